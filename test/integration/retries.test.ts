/**
 * Retries: a throwing step is retried with exponential backoff and full jitter up to
 * its maxAttempts (per step, else the function's default); every attempt shows on the
 * step row (attempt number, last error kept); after the last one the run is `failed`
 * with the error, and POST /v1/runs/:id/retry restarts it from the failed step.
 * The backoff waits in Redis's delayed sorted set until the mover promotes it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import { delayedKey } from '../../runtime/queue/names.ts';
import { getRun } from '../../runtime/store/runs.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

let healed = false;
const agent = defineAgent({
  name: 'flaky',
  input: v.object({ mode: v.picklist(['twice', 'always']) }),
  start: 'first',
  maxAttempts: 5,
  steps: {
    first: (ctx) => next('wobble', { started: ctx.input.mode }),
    wobble: {
      maxAttempts: 3,
      run: (ctx) => {
        if (ctx.input.mode === 'twice' && ctx.attempt < 3) throw new Error(`wobble failed on attempt ${ctx.attempt}`);
        if (ctx.input.mode === 'always' && !healed) throw new Error('wobble always fails');
        return done({ attempt: ctx.attempt });
      },
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline' });
});
after(() => t.close());

test('a step failing twice then succeeding ends succeeded on attempt 3, its errors visible', async () => {
  const id = await trigger(t.api, 'flaky', { mode: 'twice' });
  const { run, steps, attempts } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { attempt: 3 });
  const wobble = steps[1];
  assert.deepEqual([wobble.status, wobble.attempt, wobble.error], ['succeeded', 3, null], 'the step row shows the latest attempt');
  // Each failed attempt's error is kept on its own row.
  const failed = attempts.filter((a) => a.seq === 1 && a.status === 'failed');
  assert.deepEqual(
    failed.map((a) => [a.attempt, (a.error as { code: string }).code, (a.error as { attempt: number }).attempt]),
    [[1, 'step_error', 1], [2, 'step_error', 2]],
  );
  assert.match((failed[1].error as { message: string }).message, /attempt 2/);
});

test('a step always failing ends failed after its own maxAttempts; retry restarts it from that step', async () => {
  healed = false;
  const id = await trigger(t.api, 'flaky', { mode: 'always' });
  const failed = await waitForRun(t.p, id);
  assert.equal(failed.run.status, 'failed');
  const error = failed.run.error as { code: string; step: string; seq: number; attempt: number; message: string };
  assert.deepEqual([error.code, error.step, error.seq, error.attempt], ['step_error', 'wobble', 1, 3], 'step maxAttempts 3 beats the function default 5');
  assert.match(error.message, /always fails/);
  assert.deepEqual(failed.steps.map((s) => [s.name, s.status, s.attempt]), [['first', 'succeeded', 1], ['wobble', 'failed', 3]]);

  healed = true;
  const res = await t.api.request(`/v1/runs/${id}/retry`, { method: 'POST' });
  assert.equal(res.status, 202);
  const retried = await waitForRun(t.p, id);
  assert.equal(retried.run.status, 'succeeded');
  assert.equal(retried.run.error, null);
  assert.deepEqual(retried.run.output, { attempt: 4 }, 'the attempt count goes on after the failed ones');
  // Restarted from the failed step: the first step did not run again.
  assert.deepEqual(retried.steps.map((s) => [s.seq, s.name, s.status, s.attempt]), [[0, 'first', 'succeeded', 1], [1, 'wobble', 'succeeded', 4]]);
  assert.deepEqual(retried.attempts.filter((a) => a.seq === 1).map((a) => a.status), ['failed', 'failed', 'failed', 'succeeded'], 'the failures stay');

  const again = await t.api.request(`/v1/runs/${id}/retry`, { method: 'POST' });
  assert.equal(again.status, 409, 'only a failed or cancelled run can be retried');
});

test('the backoff waits in the delayed sorted set until the mover promotes it', async (tc) => {
  // Driven by hand (no worker) so every transition can be observed.
  const p = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_RETRY_BASE_MS: '700', BATON_RETRY_MAX_MS: '5000' },
  });
  tc.after(() => p.close());
  const id = await trigger(p.api, 'flaky', { mode: 'twice' });
  const first = await executeStep(p.p, 'flaky', { runId: id, seq: 0 }, { worker: 'test' });
  assert.equal(first.status, 'committed');
  // Empty the stream (the trigger's and the hand-on's wake-ups) so only the retry can appear.
  for (const d of await p.p.queue.read(['flaky'], 'test', 10, 100)) await p.p.queue.ack(d);

  // Full jitter draws from [0, ceiling]; pin the draw to the top to see the ceiling.
  tc.mock.method(Math, 'random', () => 1);
  const failed = await executeStep(p.p, 'flaky', { runId: id, seq: 1 }, { worker: 'test' });
  tc.mock.restoreAll();
  assert.deepEqual(failed, { status: 'retrying', delayMs: 700, error: 'wobble failed on attempt 1' });

  const { createClient } = await import('redis');
  const client = await createClient({ url: p.env.REDIS_URL }).connect();
  tc.after(() => client.close());
  const member = `${id}|1`;
  const score = await client.zScore(delayedKey(p.prefix, 'flaky'), member);
  assert.ok(score !== null, 'the retry waits in the delayed set');
  const [secs, micros] = (await client.sendCommand(['TIME'])) as [string, string];
  const redisNow = Number(secs) * 1000 + Math.floor(Number(micros) / 1000);
  assert.ok(score - redisNow > 0 && score - redisNow <= 700, `due in ${score - redisNow} ms`);
  const run = await getRun(p.p.db, id);
  assert.equal(run?.attempt, 2);
  assert.ok(run?.wakeAt, 'the run records when the retry may start');

  // Not due yet: the mover leaves it; the claim would refuse it anyway (wake_at).
  assert.equal(await p.p.queue.promoteDue(['flaky']), 0);
  assert.equal((await p.p.queue.depth(['flaky']))[0].lag, 0, 'nothing waits on the stream');
  const early = await executeStep(p.p, 'flaky', { runId: id, seq: 1 }, { worker: 'test' });
  assert.equal(early.status, 'skipped');
  assert.equal(early.status === 'skipped' && early.verdict.action, 'recheck');

  // Due: the mover moves it onto the function's stream.
  await waitFor(async () => (await p.p.queue.promoteDue(['flaky'])) > 0, 'the mover');
  assert.equal(await client.zScore(delayedKey(p.prefix, 'flaky'), member), null);
  const deliveries = await p.p.queue.read(['flaky'], 'test', 10, 100);
  assert.ok(deliveries.some((d) => d.message.runId === id && d.message.seq === 1));

  // Second failure: the ceiling doubles.
  tc.mock.method(Math, 'random', () => 1);
  const second = await executeStep(p.p, 'flaky', { runId: id, seq: 1 }, { worker: 'test' });
  tc.mock.restoreAll();
  assert.deepEqual(second, { status: 'retrying', delayMs: 1400, error: 'wobble failed on attempt 2' });
});
