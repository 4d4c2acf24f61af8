/**
 * The calls of many steps finishing at once are written in a few statements (a worker
 * finishes a thousand model calls within moments), each still stored before its
 * recordStepCall resolves; a row the database refuses costs only its own step its row.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Db } from '../../runtime/db/connect.ts';
import { createRun } from '../../runtime/store/runs.ts';
import { recordStepCall, stepCallsOf } from '../../runtime/store/step-calls.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase();
});
after(async () => {
  await t.drop();
});

/** The database, counting the INSERT statements sent through it. */
function counting(db: Db): { db: Db; inserts: () => number } {
  let inserts = 0;
  const counted = new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === 'insert') inserts++;
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return { db: counted, inserts: () => inserts };
}

async function newRuns(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  for (const id of ids) await createRun(t.database.db, { id, function: 'f', tenant: 'default', input: {}, start: 'a' });
  return ids;
}

test('the calls of 150 steps finishing at once take a few statements, and each is stored when its write resolves', async () => {
  const ids = await newRuns(150);
  const { db, inserts } = counting(t.database.db);
  await Promise.all(
    ids.map((runId, i) => recordStepCall(db, { runId, seq: 0, attempt: 1 }, { kind: 'llm', request: { prompt: `p${i}` }, response: { text: `a${i}` } })),
  );
  assert.ok(inserts() <= 3, `${inserts()} INSERT statements for 150 calls`);
  for (const [i, runId] of ids.entries()) {
    const [row] = await stepCallsOf(t.database.db, runId, 0);
    assert.deepEqual([row?.request, row?.response], [{ prompt: `p${i}` }, { text: `a${i}` }]);
  }
});

test('a call written again for the same attempt replaces it, also within one statement', async () => {
  const [runId] = await newRuns(1);
  const where = { runId, seq: 0, attempt: 1 };
  await recordStepCall(t.database.db, where, { kind: 'llm', request: { v: 1 } });
  await Promise.all([
    recordStepCall(t.database.db, where, { kind: 'llm', request: { v: 2 } }),
    recordStepCall(t.database.db, where, { kind: 'tool', request: { v: 3 }, error: { message: 'no' } }),
  ]);
  const rows = await stepCallsOf(t.database.db, runId, 0);
  assert.equal(rows.length, 1);
  assert.deepEqual([rows[0].kind, rows[0].request, rows[0].error], ['tool', { v: 3 }, { message: 'no' }]);
});

test('a row the database refuses fails only its own write', async () => {
  const ids = await newRuns(3);
  // A NUL character is valid JSON text but jsonb refuses it.
  const writes = ids.map((runId, i) =>
    recordStepCall(t.database.db, { runId, seq: 0, attempt: 1 }, { kind: 'llm', request: { prompt: i === 1 ? 'bad\u0000' : 'fine' } }),
  );
  const results = await Promise.allSettled(writes);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.equal((await stepCallsOf(t.database.db, ids[0], 0)).length, 1);
  assert.equal((await stepCallsOf(t.database.db, ids[1], 0)).length, 0);
  assert.equal((await stepCallsOf(t.database.db, ids[2], 0)).length, 1);
});
