/**
 * A run read with its steps and attempts (GET /v1/runs/:id, the event stream, the UI)
 * is one snapshot: a commit landing between its reads must not show an attempt that
 * succeeded beside a step row that has not (the event stream then sent a
 * step.completed with no kind).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as v from 'valibot';
import type { Db } from '../../runtime/db/connect.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import * as schema from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

const one = defineAgent({ name: 'one', input: v.object({}), start: 'go', steps: { go: () => done(null) } });

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(one), tools: false, llm: 'offline', worker: false });
});
after(() => t.close());

/** A Drizzle handle whose reads of `step_attempts` wait for `gate` (after the reads before them answered). */
function gatedDb(url: string, gate: Promise<void>, reached: () => void): { db: Db; end: () => Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    // pg's query has a dozen overloads; this passes every call through, holding the attempts' read.
    client.query = ((...args: unknown[]) => {
      const first = args[0] as string | { text?: string } | undefined;
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      if (!/"step_attempts"/.test(text)) return query(...args);
      reached();
      // pg's pool calls with a callback and wants nothing back; a client's own caller wants the promise.
      if (typeof args.at(-1) === 'function') return void gate.then(() => query(...args));
      return gate.then(() => query(...args));
    }) as typeof client.query;
  });
  return { db: drizzle({ client: pool, schema }) as unknown as Db, end: () => pool.end() };
}

test('a step committed between the reads of a run and its attempts is seen whole or not at all', { timeout: 20_000 }, async () => {
  const id = await trigger(t.api, 'one', {});
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let reached!: () => void;
  const atAttempts = new Promise<void>((resolve) => (reached = resolve));
  const gated = gatedDb(t.db.url, gate, reached);
  try {
    const read = getRunWithSteps(gated.db, id);
    await atAttempts;
    // Let the reads issued before the attempts' answer, then commit the step as a worker would.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const c = new pg.Client({ connectionString: t.db.url });
    await c.connect();
    try {
      await c.query('begin');
      await c.query(`insert into steps (run_id, seq, name, kind, status, attempt) values ($1, 0, 'go', 'compute', 'succeeded', 1)`, [id]);
      await c.query(`insert into step_attempts (run_id, seq, attempt, status) values ($1, 0, 1, 'succeeded')`, [id]);
      await c.query(`update runs set status = 'succeeded', next_seq = 1, next_step = null, output = 'null' where id = $1`, [id]);
      await c.query('commit');
    } finally {
      await c.end();
    }
    open();
    const full = await read;
    assert.ok(full);
    const seen = { run: full.run.status, steps: full.steps.length, attempts: full.attempts.length };
    const before = { run: 'queued', steps: 0, attempts: 0 };
    const afterCommit = { run: 'succeeded', steps: 1, attempts: 1 };
    assert.ok(
      JSON.stringify(seen) === JSON.stringify(before) || JSON.stringify(seen) === JSON.stringify(afterCommit),
      `one snapshot: ${JSON.stringify(seen)}`,
    );
  } finally {
    open();
    await gated.end();
  }
});
