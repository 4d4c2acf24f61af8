/**
 * POSTs that arrive together are inserted together (one multi-row INSERT instead of
 * one statement each), and each request still gets its own answer: the same
 * Idempotency-Key sent many times at once creates one run, and a row the database
 * refuses fails only its own insert.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type SQL, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { type Db, query } from '../../runtime/db/connect.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { insertRun } from '../../runtime/store/run-inserts.ts';
import { type TestPlatform, startTestPlatform } from '../helpers/platform.ts';

const echo = defineAgent({
  name: 'echo',
  input: v.object({ text: v.string() }),
  start: 'only',
  steps: { only: (ctx) => done(ctx.input.text) },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(echo), tools: false, llm: 'offline', worker: false });
});
after(() => t.close());

/** An API whose every statement to PostgreSQL is recorded. */
function recordingApi(): { api: ReturnType<typeof createApi>; db: Db; inserts: () => number } {
  const statements: string[] = [];
  const dialect = new PgDialect();
  const db = new Proxy(t.p.db, {
    get(target, key, receiver) {
      if (key !== 'execute') return Reflect.get(target, key, receiver) as unknown;
      return (statement: SQL) => {
        statements.push(dialect.sqlToQuery(statement).sql);
        return target.execute(statement);
      };
    },
  }) as Db;
  return { api: createApi({ ...t.p, db }), db, inserts: () => statements.filter((s) => /\binsert into runs\b/i.test(s)).length };
}

const post = (api: ReturnType<typeof createApi>, text: string, key?: string) =>
  api.request('/v1/functions/echo/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify({ text }),
  });

test('100 POSTs at once: every one answered 202 with its own run, in far fewer INSERT statements', async () => {
  const { api, inserts } = recordingApi();
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => post(api, `n${i}`)));
  assert.deepEqual(
    answers.map((r) => r.status),
    answers.map(() => 202),
  );
  const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
  assert.equal(new Set(ids).size, 100, 'a run each');
  const rows = await query<{ id: string; text: string }>(t.p.db, sql`select id, input->>'text' as text from runs where function = 'echo' and input->>'text' like 'n%'`);
  assert.deepEqual(new Map(rows.map((r) => [r.id, r.text])), new Map(ids.map((id, i) => [id, `n${i}`])), 'each run holds its own input');
  assert.ok(inserts() < 50, `${inserts()} INSERT statements for 100 runs`);
});

test('inserts asked for in the same turn of the event loop go as one INSERT, even with none under way', async () => {
  const { api, inserts } = recordingApi();
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => post(api, `turn${i}`)));
  assert.deepEqual(
    answers.map((r) => r.status),
    answers.map(() => 202),
  );
  assert.equal(inserts(), 1, 'one INSERT for twelve runs that arrived together');
});

test('the wake-ups of runs created together reach the stream, each once with its run and seq 0, in far fewer commands', async () => {
  const published: number[] = [];
  const queue = {
    ...t.p.queue,
    publish: (fn: string, m: Parameters<typeof t.p.queue.publish>[1], delayMs?: number) => {
      published.push(1);
      return t.p.queue.publish(fn, m, delayMs);
    },
    publishMany: (fn: string, ms: Parameters<typeof t.p.queue.publishMany>[1]) => {
      published.push(ms.length);
      return t.p.queue.publishMany(fn, ms);
    },
  };
  const api = createApi({ ...t.p, queue });
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => post(api, `wake${i}`)));
  const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
  const delivered = await t.p.queue.read(['echo'], 'probe', 1000, 200);
  const mine = delivered.filter((d) => ids.includes(d.message.runId));
  assert.deepEqual(mine.map((d) => d.message.runId).toSorted(), ids.toSorted(), 'one wake-up per run');
  assert.ok(mine.every((d) => d.message.seq === 0));
  assert.equal(published.reduce((a, b) => a + b, 0), 30);
  assert.ok(published.length < 10, `${published.length} publish commands for 30 runs`);
});

test('the same Idempotency-Key 20 times at once: one run, the others replay it', async () => {
  const { api } = recordingApi();
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(api, 'same', 'key-batch-1')));
  assert.deepEqual(
    answers.map((r) => r.status),
    answers.map(() => 202),
  );
  const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));
  assert.equal(new Set(ids).size, 1, 'one run for one key');
  assert.equal(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true').length, 19);
  const [count] = await query<{ n: number }>(t.p.db, sql`select count(*)::int as n from runs where idempotency_key = 'key-batch-1'`);
  assert.equal(count.n, 1);
});

test('a run the database refuses fails only its own insert, not the batch it travelled in', async () => {
  // Below the API (which already refuses what jsonb cannot store): a row whose input is not JSON at all.
  const rows = Array.from({ length: 30 }, (_, i) => ({
    id: randomUUID(),
    function: 'echo',
    tenant: 'default',
    input: i === 10 ? '{"text": not json' : JSON.stringify({ text: `ok${i}` }),
    next_step: 'only',
    idempotency_key: null,
    replay_of: null,
    trace_context: null,
  }));
  const results = await Promise.allSettled(rows.map((r) => insertRun(t.p.db, r)));
  assert.equal(results[10].status, 'rejected', 'the refused row fails');
  assert.deepEqual(
    results.filter((_, i) => i !== 10).map((r) => (r.status === 'fulfilled' ? r.value : r.reason)),
    Array.from({ length: 29 }, () => true),
    'every other row is inserted',
  );
  const [count] = await query<{ n: number }>(t.p.db, sql`select count(*)::int as n from runs where input->>'text' like 'ok%'`);
  assert.equal(count.n, 29);
});

test('a batch in which some runs exist already: those answer false, every other true, as prepared and unprepared', async () => {
  const rowOf = (text: string) => ({
    id: randomUUID(),
    function: 'echo',
    tenant: 'default',
    input: JSON.stringify({ text }),
    next_step: 'only',
    idempotency_key: null,
    replay_of: null,
    trace_context: null,
  });
  // t.p.db sends prepared statements; the recording proxy is not a known pool, so its statements go unprepared.
  for (const db of [t.p.db, recordingApi().db]) {
    const earlier = Array.from({ length: 4 }, (_, i) => rowOf(`earlier${i}`));
    assert.deepEqual(await Promise.all(earlier.map((r) => insertRun(db, r))), [true, true, true, true]);
    const batch = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? earlier[i / 3] : rowOf(`fresh${i}`)));
    assert.deepEqual(
      await Promise.all(batch.map((r) => insertRun(db, r))),
      batch.map((_, i) => i % 3 !== 0),
    );
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) => insertRun(db, rowOf(`all${i}`))));
    assert.deepEqual(all, Array.from({ length: 8 }, () => true), 'a batch with no conflict');
  }
});
