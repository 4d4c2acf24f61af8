/**
 * A run read with its steps and attempts (GET /v1/runs/:id, the event stream, the UI),
 * and a step read with its attempts (GET /v1/runs/:id/steps/:seq), is one snapshot: a commit landing between its reads must not show an attempt that
 * succeeded beside a step row that has not (the event stream then sent a
 * step.completed with no kind).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as v from 'valibot';
import { type Db, query } from '../../runtime/db/connect.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { deriveEvents } from '../../runtime/api/events.ts';
import { readRunSince, readRunsSince } from '../../runtime/store/run-events.ts';
import { type RunWithSteps, getRunWithSteps } from '../../runtime/store/runs.ts';
import { getStepDetail } from '../../runtime/store/step-detail.ts';
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

/** Starts `read` on a gated handle, lets a commit of `statements` land while it reads the attempts, and returns what it read. */
async function readAcrossCommit<T>(read: (db: Db) => Promise<T>, statements: Array<[string, unknown[]]>): Promise<T> {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let reached!: () => void;
  const atAttempts = new Promise<void>((resolve) => (reached = resolve));
  const gated = gatedDb(t.db.url, gate, reached);
  try {
    const result = read(gated.db);
    await atAttempts;
    // Let the reads issued before the attempts' answer, then commit as a worker would.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const c = new pg.Client({ connectionString: t.db.url });
    await c.connect();
    try {
      await c.query('begin');
      for (const [text, values] of statements) await c.query(text, values);
      await c.query('commit');
    } finally {
      await c.end();
    }
    open();
    return await result;
  } finally {
    open();
    await gated.end();
  }
}

/** A new run whose first step is running: its step and attempt rows open. */
async function runWithStepRunning(): Promise<string> {
  const id = await trigger(t.api, 'one', {});
  await query(t.p.db, sql`insert into steps (run_id, seq, name, status, attempt) values (${id}, 0, 'go', 'running', 1)`);
  await query(t.p.db, sql`insert into step_attempts (run_id, seq, attempt, status) values (${id}, 0, 1, 'running')`);
  return id;
}

test('a step committed between the reads of a run and its attempts is seen whole or not at all', { timeout: 20_000 }, async () => {
  const id = await trigger(t.api, 'one', {});
  const full = await readAcrossCommit(
    (db) => getRunWithSteps(db, id),
    [
      [`insert into steps (run_id, seq, name, kind, status, attempt) values ($1, 0, 'go', 'compute', 'succeeded', 1)`, [id]],
      [`insert into step_attempts (run_id, seq, attempt, status) values ($1, 0, 1, 'succeeded')`, [id]],
      [`update runs set status = 'succeeded', next_seq = 1, next_step = null, output = 'null' where id = $1`, [id]],
    ],
  );
  assert.ok(full);
  const seen = JSON.stringify({ run: full.run.status, steps: full.steps.length, attempts: full.attempts.length });
  const whole = [{ run: 'queued', steps: 0, attempts: 0 }, { run: 'succeeded', steps: 1, attempts: 1 }].map((x) => JSON.stringify(x));
  assert.ok(whole.includes(seen), `one snapshot: ${seen}`);
});

test("a step's detail read across its commit shows its row and attempts at one instant", { timeout: 20_000 }, async () => {
  const id = await runWithStepRunning();
  const detail = await readAcrossCommit(
    (db) => getStepDetail(db, id, 0),
    [
      [`update steps set status = 'succeeded', kind = 'compute' where run_id = $1 and seq = 0`, [id]],
      [`update step_attempts set status = 'succeeded' where run_id = $1 and seq = 0`, [id]],
    ],
  );
  assert.ok(detail);
  assert.deepEqual([detail.step.status, detail.attempts.map((a) => a.status)].flat(), detail.step.status === 'running' ? ['running', 'running'] : ['succeeded', 'succeeded']);
});

/** The event stream's reads (streams/run-watchers.ts): one run from a seq on, and many runs at once. */
const watcherReads: Array<[string, (db: Db, id: string) => Promise<RunWithSteps | null | undefined>]> = [
  ['one run', (db, id) => readRunSince(db, id, 0)],
  ['many runs', async (db, id) => (await readRunsSince(db, [{ id, fromSeq: 0 }])).get(id)],
];

for (const [what, read] of watcherReads) {
  test(`the event stream's read of ${what} across a step's commit sees the step and its attempt at one instant`, { timeout: 20_000 }, async () => {
    const id = await runWithStepRunning();
    const full = await readAcrossCommit(
      (db) => read(db, id),
      [
        [`update steps set status = 'succeeded', kind = 'tool' where run_id = $1 and seq = 0`, [id]],
        [`update step_attempts set status = 'succeeded' where run_id = $1 and seq = 0`, [id]],
      ],
    );
    assert.ok(full);
    // A step.completed derived from a succeeded attempt beside the step's row before its commit had no kind.
    const completed = deriveEvents(id, full).filter((e) => e.event === 'step.completed');
    assert.ok(completed.every((e) => (e.data as { kind: string | null }).kind === 'tool'), JSON.stringify(completed));
    assert.equal(new Set([full.steps[0]?.status, ...full.attempts.map((a) => a.status)]).size, 1, JSON.stringify({ steps: full.steps, attempts: full.attempts }));
  });
}
