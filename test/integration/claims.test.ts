/**
 * Edges of the claim: a message for one function never claims a run of another; a
 * claimer whose claim answer was lost (the statement retried after a dropped
 * connection) gets its own lease back at once; and a finished step keeps its lease
 * through a commit that has to be retried, so no other worker takes the step over.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Platform } from '../../runtime/platform.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { TEST_INVOKE_TOKEN, type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const ran: string[] = [];
const alpha = defineAgent({
  name: 'alpha',
  input: v.object({}),
  start: 'one',
  steps: {
    one: (ctx) => {
      ran.push(`alpha:${ctx.runId}`);
      return next('two');
    },
    two: () => done('alpha'),
  },
});
const beta = defineAgent({
  name: 'beta',
  input: v.object({}),
  start: 'one',
  steps: {
    one: (ctx) => {
      ran.push(`beta:${ctx.runId}`);
      return done('beta');
    },
  },
});

const LEASE_MS = 1000;
let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(alpha, beta),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_LEASE_MS: String(LEASE_MS) },
  });
});
after(() => t.close());

/** The statement's error when the server ends its connection (a restart or a pooler blip). */
const connectionDropped = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

test('a message or /invoke for function A never claims a run of function B', async () => {
  const id = await trigger(t.api, 'beta', {});
  const outcome = await executeStep(t.p, 'alpha', { runId: id, seq: 0 }, { worker: 'alpha-worker' });
  assert.equal(outcome.status, 'skipped');
  assert.equal(outcome.status === 'skipped' && outcome.verdict.action, 'drop');

  const invoke = createInvokeApp(t.p, { worker: 'alpha-pod' });
  const res = await invoke.request('/invoke/alpha', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INVOKE_TOKEN}` },
    body: JSON.stringify({ run_id: id, seq: 0 }),
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { outcome: { status: string } }).outcome.status, 'skipped');

  const untouched = await getRunWithSteps(t.p.db, id);
  assert.equal(untouched?.run.status, 'queued');
  assert.equal(untouched?.run.leaseOwner, null);
  assert.deepEqual(untouched?.steps, [], 'no step row was written');
  assert.ok(!ran.includes(`alpha:${id}`));

  // Its own function still runs it.
  assert.equal((await executeStep(t.p, 'beta', { runId: id, seq: 0 }, { worker: 'beta-worker' })).status, 'committed');
  assert.equal((await waitForRun(t.p, id)).run.output, 'beta');
});

test('a claimer whose claim answer was lost gets its own lease back at once', async () => {
  const id = await trigger(t.api, 'alpha', {});
  const claim = { runId: id, function: 'alpha', seq: 0, leaseOwner: 'w/1', worker: 'w', leaseMs: 60_000 };
  assert.ok(await claimStep(t.p.db, claim));
  const again = await claimStep(t.p.db, claim);
  assert.ok(again, 'the same claimer re-claims its own live lease');
  assert.equal(again.step, 'one');
  assert.equal(await claimStep(t.p.db, { ...claim, leaseOwner: 'other/1' }), null, 'nobody else does');

  // Through the engine: the claim statement runs twice, as withDb's retry does when the
  // first try committed and only its answer was lost. The step runs now, not after a lease.
  const fresh = await trigger(t.api, 'alpha', {});
  let calls = 0;
  const lostAnswer = <T>(fn: () => Promise<T>): Promise<T> => (++calls === 1 ? fn().then(() => fn()) : fn());
  const outcome = await executeStep({ ...t.p, withDb: lostAnswer }, 'alpha', { runId: fresh, seq: 0 }, { worker: 'w' });
  assert.deepEqual(outcome, { status: 'committed', result: 'next', nextSeq: 1 });
  assert.ok(ran.includes(`alpha:${fresh}`));
});

test('a finished step keeps its lease while its commit is retried, so nobody takes it over', async () => {
  const id = await trigger(t.api, 'alpha', {});
  // The commit's connection keeps dropping for three leases; the database still answers
  // everything else (heartbeats, other workers).
  const blipMs = 3 * LEASE_MS;
  let calls = 0;
  let commitStarted = 0;
  const commitBlip: Platform['withDb'] = (fn, budgetMs) => {
    if (++calls !== 2) return t.p.withDb(fn, budgetMs);
    commitStarted = Date.now();
    return t.p.withDb(() => (Date.now() - commitStarted < blipMs ? Promise.reject(connectionDropped()) : fn()), budgetMs);
  };
  let finished = false;
  const outcome = executeStep({ ...t.p, withDb: commitBlip }, 'alpha', { runId: id, seq: 0 }, { worker: 'holder' }).finally(() => {
    finished = true;
  });
  // Once the step is done and its commit is being retried, another worker tries to claim it all along.
  await waitFor(() => commitStarted > 0 || finished, 'the commit to start');
  const stolen: string[] = [];
  let tries = 0;
  let lastTryMs = 0;
  while (!finished) {
    const other = await claimStep(t.p.db, { runId: id, function: 'alpha', seq: 0, leaseOwner: `thief/${tries++}`, worker: 'thief', leaseMs: LEASE_MS });
    lastTryMs = Date.now() - commitStarted;
    if (other) stolen.push(`claimed ${lastTryMs} ms into the commit`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.deepEqual(stolen, [], 'no other worker took the step over');
  assert.ok(Date.now() - commitStarted >= blipMs, 'the commit was held back for the whole blip');
  assert.ok(lastTryMs > 2 * LEASE_MS, `the other worker still tried ${lastTryMs} ms in, long after an unrenewed lease would have run out`);
  assert.deepEqual(await outcome, { status: 'committed', result: 'next', nextSeq: 1 });
  const { steps } = await waitForRun(t.p, id, ['running']);
  assert.deepEqual(steps.map((s) => [s.seq, s.status, s.worker]), [[0, 'succeeded', 'holder']]);
});
