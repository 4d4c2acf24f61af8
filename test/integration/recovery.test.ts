/**
 * The recovery paths of the step protocol, in one process, each provoked by hand:
 *   - commit → publish gap: the step committed, its hand-on was lost; a duplicate of
 *     the committed step's message re-publishes the run's current step;
 *   - reclaim: a consumer took a message and a lease and died; another worker takes
 *     the message over from the pending list once the lease has run out;
 *   - Redis data loss: the streams and the delayed set vanish; the sweeper re-publishes
 *     the live runs from PostgreSQL (one sweeper at a time, advisory lock).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import * as v from 'valibot';
import { type Db, query } from '../../runtime/db/connect.ts';
import { append, defineAgent, done, next } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Platform } from '../../runtime/platform.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { commitStep } from '../../runtime/store/commit.ts';
import { heartbeat } from '../../runtime/store/lease.ts';
import { sweep } from '../../runtime/store/sweep.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { dropPrefix } from '../helpers/redis.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const executions = new Map<string, number>();
const agent = defineAgent({
  name: 'relay',
  input: v.object({ fail: v.optional(v.boolean()) }),
  start: 'a',
  steps: {
    a: (ctx) => {
      executions.set(`${ctx.runId}:a`, (executions.get(`${ctx.runId}:a`) ?? 0) + 1);
      return next('b', { log: append('a') });
    },
    b: (ctx) => {
      executions.set(`${ctx.runId}:b`, (executions.get(`${ctx.runId}:b`) ?? 0) + 1);
      if (ctx.input.fail && ctx.attempt === 1) throw new Error('fails once');
      return next('c', { log: append('b') });
    },
    c: (ctx) => done({ log: [...((ctx.state.log as string[]) ?? []), 'c'] }),
  },
});

/** A worker that stops before its platform closes (a worker outliving its Redis clients would hang). */
async function startWorker(p: Platform) {
  const worker = createWorker(p);
  await worker.start();
  const close = p.close;
  p.close = async () => {
    await worker.stop(1000);
    await close();
  };
  return worker;
}

/** The platform with a queue that loses every publish: a crash right after the commit. */
function losingHandOn(p: Platform): Platform {
  return { ...p, queue: { ...p.queue, publish: async () => {} } };
}

test('commit → publish gap: a duplicate message for the committed step re-publishes the next one', async (tc) => {
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false });
  tc.after(() => t.close());
  const id = await trigger(t.api, 'relay', {});
  const [first] = await t.p.queue.read(['relay'], 'doomed', 10, 500);
  assert.equal(first.message.seq, 0);

  // Step 0 commits, then the process "dies" before publishing step 1 (and before acking).
  const outcome = await executeStep(losingHandOn(t.p), 'relay', first.message, { worker: 'doomed' });
  assert.deepEqual(outcome, { status: 'committed', result: 'next', nextSeq: 1 });
  const probe = await t.p.queue.read(['relay'], 'probe', 10, 100);
  assert.equal(probe.length, 0, 'nothing was handed on');

  // The unacked message comes back (reclaim); its claim finds the run past seq 0 and idle.
  const repaired = await executeStep(t.p, 'relay', first.message, { worker: 'rescuer' });
  assert.equal(repaired.status, 'skipped');
  assert.deepEqual(repaired.status === 'skipped' && repaired.verdict, {
    action: 'republish',
    reason: 'repair: committed but not handed on',
    function: 'relay',
    seq: 1,
    delayMs: 0,
  });
  await t.p.queue.ack(first);

  await startWorker(t.p);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { log: ['a', 'b', 'c'] });
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.status]), [[0, 'a', 'succeeded'], [1, 'b', 'succeeded'], [2, 'c', 'succeeded']]);
  assert.equal(executions.get(`${id}:a`), 1, 'the committed step did not run again');
});

test('a fenced commit whose first try did commit still hands on (lost answer during a database blip)', async (tc) => {
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false });
  tc.after(() => t.close());
  const id = await trigger(t.api, 'relay', {});
  for (const d of await t.p.queue.read(['relay'], 'x', 10, 500)) await t.p.queue.ack(d);
  // withDb runs the commit statement twice, as its retry does when the first try
  // committed and only the answer was lost: the second try meets the fence.
  let calls = 0;
  const blip = <T>(fn: () => Promise<T>): Promise<T> => (++calls === 2 ? fn().then(() => fn()) : fn());
  const outcome = await executeStep({ ...t.p, withDb: blip }, 'relay', { runId: id, seq: 0 }, { worker: 'w' });
  assert.equal(outcome.status, 'fenced');
  assert.equal(outcome.status === 'fenced' && outcome.verdict?.action, 'republish');
  const [d] = await t.p.queue.read(['relay'], 'x', 10, 500);
  assert.deepEqual(d?.message, { runId: id, seq: 1 }, 'step 1 was published after all');
});

test('reclaim: a message left by a dead consumer runs again once the lease has expired', async (tc) => {
  const t = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_LEASE_MS: '600' },
  });
  tc.after(() => t.close());
  const id = await trigger(t.api, 'relay', {});
  // The dead consumer read the message and claimed the step, then vanished.
  const [d] = await t.p.queue.read(['relay'], 'dead', 10, 500);
  const claimed = await claimStep(t.p.db, { runId: id, function: 'relay', seq: d.message.seq, leaseOwner: 'dead/1', worker: 'dead', leaseMs: 600 });
  assert.ok(claimed);

  const worker = await startWorker(t.p);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.equal(steps[0].worker, worker.consumer, 'step 0 re-ran on the live worker');
  assert.equal(steps[0].attempt, 1, 'a crash is not a failed attempt');
  const pending = await t.p.queue.depth(['relay']);
  assert.equal(pending[0].pending, 0, 'nothing left pending');
});

test('a chain holder that renewed its lease and died before its touch: the reclaimed first message looks again when the lease ends', async (tc) => {
  // Lease 12 s, a beat every 4: a live holder's lease never has less than 8 s left. (Seconds, not
  // milliseconds: the verdict below must not depend on how quickly a busy machine gets there.)
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false, env: { BATON_LEASE_MS: '12000' } });
  tc.after(() => t.close());
  const id = await trigger(t.api, 'relay', {});
  for (const d of await t.p.queue.read(['relay'], 'x', 10, 500)) await t.p.queue.ack(d);
  // The dead holder ran step 0 in process and claimed step 1 with it; its last beat renewed the
  // lease 5 s ago, and it died before that beat's touch reached its first message, which a
  // reclaim then takes over: 7 s are left, more than a beat, less than a live holder has.
  await query(t.p.db, sql`update runs set next_seq = 1, next_step = 'b', status = 'running', lease_owner = 'dead/2',
    lease_expires_at = now() + interval '7 seconds' where id = ${id}`);
  const outcome = await executeStep(t.p, 'relay', { runId: id, seq: 0 }, { worker: 'rescuer' });
  assert.equal(outcome.status, 'skipped');
  const verdict = outcome.status === 'skipped' ? outcome.verdict : null;
  assert.equal(verdict?.action, 'recheck', `not dropped (nothing else would repair the run but the sweeper): ${JSON.stringify(verdict)}`);
  assert.ok(verdict?.action === 'recheck' && verdict.delayMs >= 6000 && verdict.delayMs <= 7100, `looked at again just after the lease ends: ${JSON.stringify(verdict)}`);
});

test('Redis data loss: the sweeper re-publishes live runs, including one in backoff', async (tc) => {
  const t = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_SWEEP_AFTER_MS: '300', BATON_RETRY_BASE_MS: '800', BATON_RETRY_MAX_MS: '800' },
  });
  tc.after(() => t.close());
  const ids = await Promise.all(Array.from({ length: 5 }, () => trigger(t.api, 'relay', {})));
  // One run is mid-backoff: its retry waits in the delayed set.
  const flaky = await trigger(t.api, 'relay', { fail: true });
  await executeStep(t.p, 'relay', { runId: flaky, seq: 0 }, { worker: 'w' });
  const retrying = await executeStep(t.p, 'relay', { runId: flaky, seq: 1 }, { worker: 'w' });
  assert.equal(retrying.status, 'retrying');

  await dropPrefix(t.prefix); // streams, consumer groups and the delayed set: gone
  await startWorker(t.p);
  for (const id of [...ids, flaky]) assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  assert.equal((await waitForRun(t.p, flaky)).steps[1].attempt, 2);
});

test('the fence: a worker that lost its lease cannot commit over the new owner', async (tc) => {
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false });
  tc.after(() => t.close());
  const id = await trigger(t.api, 'relay', {});
  const base = { runId: id, function: 'relay', seq: 0, worker: 'w', leaseMs: 30_000 };
  assert.ok(await claimStep(t.p.db, { ...base, leaseOwner: 'zombie/1' }));
  assert.equal(await claimStep(t.p.db, { ...base, leaseOwner: 'other/1' }), null, 'the lease is live');
  // Once the zombie's lease has run out (ended here by hand, so no busy machine can end it early),
  // another claimer takes the step over.
  await query(t.p.db, sql`update runs set lease_expires_at = now() - interval '1 millisecond' where id = ${id}`);
  await waitFor(() => claimStep(t.p.db, { ...base, leaseOwner: 'other/1', leaseMs: 5000 }), 'the lease to expire', 5000);
  const commit = (leaseOwner: string, by: string) =>
    commitStep(t.p.db, {
      runId: id, seq: 0, attempt: 1, leaseOwner, kind: 'compute', patch: { by }, usage: { model: null, inputTokens: null, outputTokens: null, costUsd: null },
      step: 'a', worker: null, claimedAt: null,
      outcome: { type: 'next', step: 'b' }, snapshot: null,
    });
  assert.equal(await commit('zombie/1', 'zombie'), null, 'the zombie is fenced out');
  assert.ok(await commit('other/1', 'other'), 'the new owner commits');
  const { run, steps } = await waitForRun(t.p, id, ['running']);
  assert.equal(run.nextSeq, 1);
  assert.deepEqual(steps[0].patch, { by: 'other' });
  assert.equal(await heartbeat(t.p.db, id, 'zombie/1', 1000), false, 'nor can it extend a lease it lost');
});

test('one sweeper at a time: the advisory lock is transaction-scoped (PgBouncer-safe)', async (tc) => {
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false });
  tc.after(() => t.close());
  await trigger(t.api, 'relay', {});
  // Another sweeper holds the lock inside its transaction; ours gives up at once (null).
  let second: unknown;
  await t.p.db.transaction(async (tx) => {
    await query(tx as unknown as Db, sql`select pg_advisory_xact_lock(${0x6261746f6e01})`);
    second = await sweep(t.p.db, { staleMs: 0 });
  });
  assert.equal(second, null, 'a second sweeper backs off while the lock is held');
  // The lock ended with its transaction: no session state is left behind.
  const swept = await sweep(t.p.db, { staleMs: 0 });
  assert.equal(swept?.length, 1);
});
