/**
 * A worker's steps in flight follow its one shutdown signal through a single listener.
 * An EventTarget checks each listener added against every one it holds, so a listener
 * per step made each step's start and end cost time in proportion to the steps in
 * flight (a thousand at the default concurrency of an agents' worker).
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import { getRun } from '../../runtime/store/runs.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor } from '../helpers/platform.ts';

const STEPS = 20;
let inside = 0;

// Its body runs until the step's own signal aborts (the worker's shutdown reaches it there).
const held = defineAgent({
  name: 'held',
  input: v.object({}),
  start: 'hold',
  steps: {
    hold: async (ctx) => {
      inside++;
      await new Promise((resolve) => ctx.abortSignal.addEventListener('abort', resolve, { once: true }));
      return done('never committed');
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(held), tools: false, llm: 'offline', worker: false });
});
after(() => t.close());

// Bounded: a shutdown that never reaches the steps would otherwise leave them waiting until their own timeout.
test('steps in flight share one listener on the shutdown signal, and a shutdown still reaches each', { timeout: 30_000 }, async () => {
  const ids = await Promise.all(Array.from({ length: STEPS }, () => trigger(t.api, 'held', {})));
  const shutdown = new AbortController();
  const outcomes = Promise.all(ids.map((runId) => executeStep(t.p, 'held', { runId, seq: 0 }, { worker: 'w1', shutdown: shutdown.signal })));
  await waitFor(() => inside === STEPS, `all ${STEPS} steps to be running`);

  assert.ok(getEventListeners(shutdown.signal, 'abort').length <= 1, `${getEventListeners(shutdown.signal, 'abort').length} listeners for ${STEPS} steps`);

  shutdown.abort(new Error('the worker is shutting down'));
  // Each step is handed back: its lease released and its message published again for another worker.
  assert.deepEqual((await outcomes).map((o) => o.status), ids.map(() => 'released'));
  for (const id of ids) assert.equal((await getRun(t.p.db, id))?.leaseOwner, null);
  assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0);
});
