/**
 * Waiting for a person: a step returns wait(signal, { next, timeoutMs }); the run is
 * `waiting` and holds no worker and no lease; POST /v1/runs/:id/signals/:name resumes
 * it with the payload in the next step's context; the timeout resumes it with a marker.
 *
 * Signals are never lost: one sent before the run waits for it (its step still
 * running, the run queued, or waiting for another name) is kept in the run's inbox
 * and consumed by the first wait for its name; signals are consumed in arrival order,
 * each exactly once; a finished run refuses them (409 run_finished). A timeout, once
 * it fired, is what the resumed step sees on every attempt. The races (a signal
 * against a claim, a timeout, or a commit) are staged with real connections and a
 * lock barrier, not with sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq, sql } from 'drizzle-orm';
import * as v from 'valibot';
import { signals } from '../../schema/tables.ts';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done, wait } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { deliverSignal } from '../../runtime/store/signals.ts';
import { getRun } from '../../runtime/store/runs.ts';
import { blockedOnLock, openConnection } from '../helpers/connections.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

/** A step given `{ gate: key }` waits until the test opens that gate. */
const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
const gate = (key: string) => {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  gates.set(key, { open, opened });
  return key;
};

const approval = defineAgent({
  name: 'approval',
  input: v.object({ timeoutMs: v.optional(v.number()), failOnce: v.optional(v.boolean()), gate: v.optional(v.string()) }),
  start: 'ask',
  steps: {
    ask: async (ctx) => {
      await gates.get(ctx.input.gate ?? '')?.opened;
      return wait('approve', { next: 'decide', timeoutMs: ctx.input.timeoutMs, patch: { asked: true } });
    },
    decide: (ctx) => {
      if (ctx.input.failOnce && ctx.attempt === 1) throw new Error('decide fails on its first attempt');
      return done({ signal: ctx.signal ?? null, asked: ctx.state.asked, attempt: ctx.attempt });
    },
  },
});

const twice = defineAgent({
  name: 'twice',
  input: v.object({ gate: v.optional(v.string()) }),
  start: 'first',
  steps: {
    first: async (ctx) => {
      await gates.get(ctx.input.gate ?? '')?.opened;
      return wait('approve', { next: 'second' });
    },
    second: (ctx) => wait('approve', { next: 'decide', patch: { first: ctx.signal?.payload } }),
    decide: (ctx) => done({ first: ctx.state.first, second: ctx.signal?.payload }),
  },
});

let t: TestPlatform;
before(async () => {
  // A long lease: no heartbeat touches a run row while a race is staged.
  t = await startTestPlatform({ functions: registryOf(approval, twice), tools: false, llm: 'offline', env: { BATON_LEASE_MS: '60000' } });
});
after(() => t.close());

const post = (path: string, body?: unknown) =>
  t.api.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const signal = async (id: string, name: string, payload: unknown) => {
  const res = await post(`/v1/runs/${id}/signals/${name}`, payload);
  return { status: res.status, body: (await res.json()) as { buffered?: boolean; error?: { code: string } } };
};
const signalRows = (runId: string, db = t.p.db) => db.select().from(signals).where(eq(signals.runId, runId)).orderBy(asc(signals.id));

test('a signal resumes a waiting run with its payload in the next step', async () => {
  const id = await trigger(t.api, 'approval', {});
  const waiting = await waitForRun(t.p, id, ['waiting']);
  assert.equal(waiting.run.waitSignal, 'approve');
  assert.equal(waiting.run.leaseOwner, null, 'a waiting run holds no lease');
  // The slot is freed once the step's message is acked, a moment after the commit that parked the run.
  await waitFor(() => t.worker?.active === 0 || null, 'the waiting run to hold no worker slot', 2000);
  assert.deepEqual(waiting.steps.map((s) => [s.name, s.kind, s.status]), [['ask', 'wait', 'succeeded']]);

  const res = await signal(id, 'approve', { ok: true, by: 'ana' });
  assert.equal(res.status, 202);
  assert.equal(res.body.buffered, false, 'delivered straight to the waiting step');
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: { ok: true, by: 'ana' }, timedOut: false }, asked: true, attempt: 1 });
});

test('the timeout resumes it with a timeout marker', async () => {
  const id = await trigger(t.api, 'approval', { timeoutMs: 300 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: null, timedOut: true }, asked: true, attempt: 1 });
  assert.deepEqual(steps.map((s) => s.name), ['ask', 'decide']);
});

test('an early signal is kept in the inbox and consumed by the wait, which then does not wait at all', async () => {
  const key = gate('early');
  const id = await trigger(t.api, 'approval', { gate: key });
  // Queued or already in its step: either way it is not waiting yet.
  const early = await signal(id, 'approve', { early: true });
  assert.equal(early.status, 202);
  assert.equal(early.body.buffered, true);
  const other = await signal(id, 'reject', { other: true });
  assert.equal(other.status, 202, 'a signal no step waits for (yet) is kept too');
  assert.equal((await getRun(t.p.db, id))?.inbox, 2);

  gates.get(key)?.open();
  const { run, steps } = await waitForRun(t.p, id);
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: { early: true }, timedOut: false }, asked: true, attempt: 1 });
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.kind, s.nextStep]), [[0, 'ask', 'wait', 'decide'], [1, 'decide', 'compute', null]]);
  assert.deepEqual((await signalRows(id)).map((s) => [s.name, s.seq]), [['approve', 1], ['reject', null]], 'consumed once, by step 1; the other stays');
  assert.equal(run.inbox, 1);

  const late = await signal(id, 'approve', { ok: true });
  assert.deepEqual([late.status, late.body.error?.code], [409, 'run_finished'], 'a finished run refuses signals');
});

test('a signal the run waits for resumes it even while other signals sit in its inbox', async () => {
  const key = gate('unrelated');
  const id = await trigger(t.api, 'approval', { gate: key });
  assert.equal((await signal(id, 'reject', { no: true })).body.buffered, true);
  gates.get(key)?.open();
  await waitForRun(t.p, id, ['waiting']);
  const res = await signal(id, 'approve', { yes: true });
  assert.deepEqual([res.status, res.body.buffered], [202, false], 'taken at once');
  const { run } = await waitForRun(t.p, id);
  assert.deepEqual((run.output as { signal: unknown }).signal, { name: 'approve', payload: { yes: true }, timedOut: false });
  assert.deepEqual((await signalRows(id)).map((s) => [s.name, s.seq]), [['reject', null], ['approve', 1]]);
});

test('two signals in a row are consumed in arrival order, each exactly once', async () => {
  // Both sent to a waiting run, one right after the other: the first resumes it, the second waits in the inbox.
  const id = await trigger(t.api, 'twice', {});
  await waitForRun(t.p, id, ['waiting']);
  const [a, b] = [await signal(id, 'approve', 1), await signal(id, 'approve', 2)];
  assert.deepEqual([a.status, b.status], [202, 202]);
  const { run } = await waitForRun(t.p, id);
  assert.deepEqual(run.output, { first: 1, second: 2 });
  assert.deepEqual((await signalRows(id)).map((s) => [s.payload, s.seq]), [[1, 1], [2, 2]]);

  // Both sent before the run waits at all.
  const key = gate('twice-early');
  const early = await trigger(t.api, 'twice', { gate: key });
  assert.deepEqual([(await signal(early, 'approve', 'x')).body.buffered, (await signal(early, 'approve', 'y')).body.buffered], [true, true]);
  gates.get(key)?.open();
  const done2 = await waitForRun(t.p, early);
  assert.deepEqual(done2.run.output, { first: 'x', second: 'y' });
  assert.deepEqual((await signalRows(early)).map((s) => [s.payload, s.seq]), [['x', 1], ['y', 2]]);
});

test('a retry after a timeout still sees the timeout, also after a crash', async () => {
  const id = await trigger(t.api, 'approval', { timeoutMs: 200, failOnce: true });
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: null, timedOut: true }, asked: true, attempt: 2 });

  // A worker claims the resumed step and dies; the next claim still sees the timeout.
  const p = await startTestPlatform({ functions: registryOf(approval), tools: false, llm: 'offline', worker: false });
  try {
    const crashed = await trigger(p.api, 'approval', { timeoutMs: 1 });
    assert.equal((await executeStep(p.p, 'approval', { runId: crashed, seq: 0 }, { worker: 'w' })).status, 'committed');
    const first = await waitFor(
      () => claimStep(p.p.db, { runId: crashed, function: 'approval', seq: 1, leaseOwner: 'doomed/1', worker: 'doomed', leaseMs: 200 }),
      'the timeout to fire',
    );
    assert.equal(first.signal?.timedOut, true);
    const after = await waitFor(() => executeStep(p.p, 'approval', { runId: crashed, seq: 1 }, { worker: 'w' }).then((o) => o.status === 'committed' && o), 'the lease to expire');
    assert.ok(after);
    assert.deepEqual((await getRun(p.p.db, crashed))?.output, { signal: { name: 'approve', payload: null, timedOut: true }, asked: true, attempt: 1 });
  } finally {
    await p.close();
  }
});

/** A run of `approval` parked at step 1, waiting for "approve" (no worker involved). */
async function parked(p: TestPlatform, timeoutMs?: number) {
  const id = await trigger(p.api, 'approval', timeoutMs === undefined ? {} : { timeoutMs });
  assert.equal((await executeStep(p.p, 'approval', { runId: id, seq: 0 }, { worker: 'w' })).status, 'committed');
  return id;
}

test('races, staged with two connections and a lock barrier', async (tc) => {
  const p = await startTestPlatform({ functions: registryOf(approval), tools: false, llm: 'offline', worker: false, env: { BATON_LEASE_MS: '60000' } });
  const holder = await openConnection(p.db.url);
  tc.after(async () => {
    await holder.close();
    await p.close();
  });
  const claim = (runId: string, leaseOwner: string) => claimStep(p.p.db, { runId, function: 'approval', seq: 1, leaseOwner, worker: 'w', leaseMs: 60_000 });

  /** A run parked at step 1 whose wait's timeout has passed: its timeout wake-up may claim it now. */
  const timedOut = async () => {
    const id = await parked(p, 1);
    await waitFor(async () => ((await getRun(p.p.db, id))?.wakeAt?.getTime() ?? Infinity) < Date.now() - 50, 'the timeout to pass');
    return id;
  };

  await tc.test('a signal and the timeout at once, the signal first: the claim queued behind it sees the signal', async () => {
    const id = await timedOut();
    await holder.begin();
    await deliverSignal(holder.db, id, 'approve', { racing: 'claim' });
    const claimed = claim(id, 'timeout/1'); // the timeout's wake-up
    await blockedOnLock(p.p.db);
    await holder.commit();
    assert.deepEqual((await claimed)?.signal, { name: 'approve', payload: { racing: 'claim' }, timedOut: false });
  });

  await tc.test('a signal and the timeout at once, the timeout first: the step resumes timed out, the signal waits in the inbox', async () => {
    const id = await timedOut();
    await holder.begin();
    const claimed = await claimStep(holder.db, { runId: id, function: 'approval', seq: 1, leaseOwner: 'timeout/2', worker: 'w', leaseMs: 60_000 });
    const delivered = deliverSignal(p.p.db, id, 'approve', { racing: 'timeout' });
    await blockedOnLock(p.p.db);
    await holder.commit();
    assert.equal(claimed?.signal?.timedOut, true);
    assert.equal((await delivered)?.buffered, true);
    assert.deepEqual((await signalRows(id, p.p.db)).map((s) => [s.seq, s.payload]), [[null, { racing: 'timeout' }]], 'kept for a later wait');
  });

  await tc.test('a stray wake-up of a run that waits without a timeout does not resume it', async () => {
    const id = await parked(p);
    assert.equal(await claim(id, 'stray/1'), null);
    assert.equal((await getRun(p.p.db, id))?.status, 'waiting');
  });

  await tc.test('a crash between such a commit and its look at the inbox is repaired by the step\'s returning message', async () => {
    // As the crash leaves it: parked, waiting for "approve", with an "approve" in the inbox.
    const id = await parked(p);
    await query(p.p.db, sql`insert into signals (run_id, name, payload) values (${id}, 'approve', '"late"'::jsonb)`);
    await query(p.p.db, sql`update runs set inbox = inbox + 1 where id = ${id}`);
    // The dead worker's message for step 0 comes back (reclaimed); its claim finds the run past step 0.
    const outcome = await executeStep(p.p, 'approval', { runId: id, seq: 0 }, { worker: 'rescuer' });
    assert.equal(outcome.status, 'skipped');
    const resumed = await getRun(p.p.db, id);
    assert.deepEqual([resumed?.status, resumed?.inbox], ['running', 0], 'the run took its signal');
    assert.equal((await executeStep(p.p, 'approval', { runId: id, seq: 1 }, { worker: 'w' })).status, 'committed');
    assert.deepEqual(((await getRun(p.p.db, id))?.output as { signal: unknown }).signal, { name: 'approve', payload: 'late', timedOut: false });
  });

  await tc.test('a signal buffered while the step commits its wait is consumed at once', async () => {
    const key = gate('commit-race');
    const id = await trigger(p.api, 'approval', { gate: key });
    const outcome = executeStep(p.p, 'approval', { runId: id, seq: 0 }, { worker: 'w' });
    await waitFor(async () => (await getRun(p.p.db, id))?.leaseOwner, 'the step to be claimed');
    await holder.begin();
    assert.equal((await deliverSignal(holder.db, id, 'approve', { racing: 'commit' }))?.buffered, true);
    gates.get(key)?.open(); // the step returns wait('approve'); its commit queues behind the delivery
    await blockedOnLock(p.p.db);
    await holder.commit();
    assert.equal((await outcome).status, 'committed');
    const resumed = await getRun(p.p.db, id);
    assert.deepEqual([resumed?.status, resumed?.nextStep, resumed?.inbox], ['running', 'decide', 0], 'not parked: the signal was taken');
    assert.equal((await executeStep(p.p, 'approval', { runId: id, seq: 1 }, { worker: 'w' })).status, 'committed');
    assert.deepEqual(((await getRun(p.p.db, id))?.output as { signal: unknown }).signal, { name: 'approve', payload: { racing: 'commit' }, timedOut: false });
  });
});
