/**
 * Timeouts and cancellation abort the in-flight call through the step's AbortSignal:
 * the LLM stub sees its HTTP request go away. A timed-out step is a failed attempt
 * (code step_timeout); a cancelled run runs no further step.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { executeStep, type StepOutcome } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Delivery } from '../../runtime/queue/queue.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const seen: Array<{ step: string; aborted: boolean; reason: string }> = [];
const agent = defineAgent({
  name: 'slow',
  input: v.object({}),
  start: 'think',
  timeoutMs: 60_000,
  steps: {
    think: {
      timeoutMs: 400,
      maxAttempts: 1,
      run: async (ctx) => {
        try {
          const r = await ctx.llm.generateText({ prompt: 'think slowly' });
          return next('after', { text: r.text });
        } finally {
          seen.push({ step: 'think', aborted: ctx.abortSignal.aborted, reason: String(ctx.abortSignal.reason) });
        }
      },
    },
    after: () => done('unreachable: think always times out'),
  },
});
const cancellable = defineAgent({
  name: 'cancellable',
  input: v.object({}),
  start: 'ponder',
  steps: {
    ponder: async (ctx) => next('after', { text: (await ctx.llm.generateText({ prompt: 'ponder' })).text }),
    after: () => done('should not run after a cancel'),
  },
});

const outcomes: Array<{ d: Delivery; o: StepOutcome }> = [];
let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(agent, cancellable),
    tools: false,
    llm: { delayMs: 30_000 },
    worker: { onOutcome: (d, o) => outcomes.push({ d, o }) },
  });
});
after(() => t.close());

test('a per-step timeout aborts the LLM call through its AbortSignal and fails the attempt', async () => {
  const id = await trigger(t.api, 'slow', {});
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; message: string };
  assert.equal(error.code, 'step_timeout');
  assert.match(error.message, /timeout of 400 ms/, 'the step timeout overrides the function default');
  assert.deepEqual(steps.map((s) => [s.name, s.status, s.attempt]), [['think', 'failed', 1]]);
  // The request really went away (the stub would have answered after 30 s).
  await waitFor(() => t.llm?.aborted.has(1), 'the stub to see the call aborted');
  assert.equal(seen[0]?.aborted, true);
  assert.match(seen[0]?.reason ?? '', /TimeoutError|timeout/i);
});

test('cancel aborts the in-flight call within a second and no further step runs', async (tc) => {
  const before = t.llm?.calls.length ?? 0;
  const id = await trigger(t.api, 'cancellable', {});
  await waitFor(() => (t.llm?.calls.length ?? 0) > before && (t.llm?.inflight ?? 0) > 0, 'the LLM call to start');
  const call = t.llm?.calls.length ?? 0;
  const sent = Date.now();
  const res = await t.api.request(`/v1/runs/${id}/cancel`, { method: 'POST' });
  assert.equal(res.status, 200);
  await waitFor(() => t.llm?.aborted.has(call), 'the call to be aborted', 5000);
  const tookMs = (t.llm?.aborted.get(call) ?? Infinity) - sent;
  assert.ok(tookMs < 1000, `aborted ${tookMs} ms after the cancel`);

  await waitFor(() => outcomes.find((x) => x.d.message.runId === id), 'the worker to finish with the step');
  assert.equal(outcomes.find((x) => x.d.message.runId === id)?.o.status, 'cancelled');

  // A stray wake-up for the next step (a duplicate, the sweeper) is dropped by the claim.
  const stray = await executeStep(t.p, 'cancellable', { runId: id, seq: 1 }, { worker: 'test' });
  assert.equal(stray.status, 'skipped');
  const again = await executeStep(t.p, 'cancellable', { runId: id, seq: 0 }, { worker: 'test' });
  assert.equal(again.status, 'skipped');

  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'cancelled');
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.status]), [[0, 'ponder', 'failed']]);
  assert.equal((steps[0].error as { code: string }).code, 'cancelled');
  assert.equal(t.llm?.calls.length, call, 'no further LLM call');
  tc.diagnostic(`cancel → call aborted in ${tookMs} ms`);
});
