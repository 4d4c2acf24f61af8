/**
 * The PostgreSQL ledger on its own: reservation, waiting, failure and takeover, the
 * conflict rule, and the refusal to live beside the runtime's tables. (Two real
 * replicas racing are in test/chaos/ledger-replicas.test.ts.)
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { createBareDatabase, createTestDatabase } from '../../test/helpers/db.ts';
import { createPgLedger, type PgLedger } from './ledger-pg.ts';

let db: { url: string; drop(): Promise<void> };
let a: PgLedger;
let b: PgLedger;

before(async () => {
  db = await createBareDatabase('baton_t');
  a = createPgLedger({ url: `${db.url}?schema=ledger_unit`, leaseMs: 3000, waitMs: 10_000, holder: 'a' });
  b = createPgLedger({ url: `${db.url}?schema=ledger_unit`, leaseMs: 3000, waitMs: 10_000, holder: 'b' });
});
after(async () => {
  await a?.close();
  await b?.close();
  await db?.drop();
});

const entry = (key: string, argsDigest = `sha256:${'0'.repeat(64)}`) => ({ key, server: 'github', tool: 'post_comment', argsDigest, tenant: 'acme' });

test('one holder acts; a concurrent caller waits for its result instead of acting', async () => {
  let acted = 0;
  const effect = {
    act: async () => {
      acted++;
      await sleep(300);
      return { id: 1 };
    },
    recover: async () => null,
  };
  const [x, y] = await Promise.all([a.once(entry('k1'), effect), b.once(entry('k1'), effect)]);
  assert.equal(acted, 1);
  assert.deepEqual([x.result, y.result], [{ id: 1 }, { id: 1 }]);
  assert.deepEqual([x.replayed, y.replayed].sort(), [false, true]);
});

test('a failed attempt is recorded, and the next call asks the remote before acting again', async () => {
  await assert.rejects(a.once(entry('k2'), { act: async () => Promise.reject(new Error('GitHub answered 502')), recover: async () => null }), /502/);
  const { rows } = await a.pool.query(`select outcome, error from ledger_unit.tool_ledger where key = 'k2'`);
  assert.deepEqual(rows, [{ outcome: 'error', error: 'GitHub answered 502' }]);
  let acted = false;
  const out = await b.once<{ id: number | string }>(entry('k2'), { act: async () => ((acted = true), { id: 2 }), recover: async () => ({ id: 'found' }) });
  assert.deepEqual(out, { result: { id: 'found' }, replayed: true });
  assert.equal(acted, false, 'the remote had it: no second side effect');
});

test('a holder that stops renewing its lease is taken over after the lease', async () => {
  await a.pool.query(
    `insert into ledger_unit.tool_ledger (key, server, tool, args_digest, outcome, holder, lease_until) values ('k3', 'github', 'post_comment', $1, 'pending', 'gone', now() + interval '300 milliseconds')`,
    [entry('k3').argsDigest],
  );
  const out = await b.once(entry('k3'), { act: async () => ({ id: 3 }), recover: async () => null });
  assert.deepEqual(out, { result: { id: 3 }, replayed: false });
  const { rows } = await a.pool.query(`select holder, attempts, outcome from ledger_unit.tool_ledger where key = 'k3'`);
  assert.deepEqual(rows, [{ holder: 'b', attempts: 2, outcome: 'ok' }]);
});

test('a live holder past the wait gives ledger_busy (retryable), not a second side effect', async () => {
  const holder = createPgLedger({ url: `${db.url}?schema=ledger_unit`, leaseMs: 10_000, holder: 'c' });
  const impatient = createPgLedger({ url: `${db.url}?schema=ledger_unit`, waitMs: 200, holder: 'd' });
  try {
    let acted = 0;
    const slow = holder.once(entry('k4'), { act: async () => (acted++, await sleep(1500), { id: 4 }), recover: async () => null });
    // Until the holder acts (it has reserved the key by then), however slowly a busy machine gets it there.
    for (let waited = 0; acted === 0 && waited < 10_000; waited += 10) await sleep(10);
    await assert.rejects(impatient.once(entry('k4'), { act: async () => (acted++, { id: 'twice' }), recover: async () => null }), /^LedgerBusy: ledger_busy: /);
    assert.deepEqual((await slow).result, { id: 4 });
    assert.equal(acted, 1);
  } finally {
    await holder.close();
    await impatient.close();
  }
});

test('the same key with other arguments, or another tool, is idempotency_conflict', async () => {
  await a.once(entry('k5'), { act: async () => ({ id: 5 }), recover: async () => null });
  await assert.rejects(b.once(entry('k5', `sha256:${'1'.repeat(64)}`), { act: async () => ({}), recover: async () => null }), /idempotency_conflict: key k5 was used for arguments/);
  await assert.rejects(b.once({ ...entry('k5'), tool: 'list_comments' }, { act: async () => ({}), recover: async () => null }), /was used for github\.post_comment, not github\.list_comments/);
});

test("the ledger refuses to live beside the runtime's tables", async () => {
  const runtime = await createTestDatabase({ open: false });
  const misplaced = createPgLedger({ url: runtime.url });
  try {
    await assert.rejects(misplaced.prepare(), /points at the runtime's tables/);
    assert.match((await misplaced.problem()) ?? '', /runtime's tables/);
  } finally {
    await misplaced.close();
    await runtime.drop();
  }
});
