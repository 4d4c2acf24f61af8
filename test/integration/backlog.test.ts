/**
 * Two guards against duplicate wake-ups:
 *   - a running step keeps its stream entry fresh (touch), so another worker's reclaim
 *     never takes over a step that is only slow;
 *   - the sweeper waits as long as a function's backlog is old before it counts a run
 *     as lost, so a deep backlog is not doubled by re-published wake-ups.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { sweep } from '../../runtime/store/sweep.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const slow = defineAgent({
  name: 'slow',
  input: v.object({ ms: v.number() }),
  start: 'wait',
  steps: {
    wait: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, ctx.input.ms));
      return done({ waited: ctx.input.ms });
    },
  },
});

test('a step running for several leases is never taken over by another worker', async () => {
  const t = await startTestPlatform({
    functions: registryOf(slow),
    tools: false,
    llm: 'offline',
    // Beats ten times a lease, so a loaded machine's late beat does not let a live lease lapse.
    env: { BATON_LEASE_MS: '1000', BATON_HEARTBEAT_MS: '100' },
  });
  // A second worker process, in effect: its own platform and consumer on the same database and prefix.
  const other = await createPlatform(t.config, { database: t.db.database, functions: registryOf(slow) });
  const seen: string[] = [];
  const thief = createWorker(other, { onOutcome: (d, outcome) => seen.push(`${d.message.seq}:${outcome.status}`) });
  try {
    const id = await trigger(t.api, 'slow', { ms: 3000 });
    await waitForRun(t.p, id, ['running']);
    await thief.start(); // it joins while the step runs, and reclaims every lease/4
    const { run, steps } = await waitForRun(t.p, id);
    assert.equal(run.status, 'succeeded');
    assert.equal(steps[0].attempt, 1);
    assert.notEqual(steps[0].worker, thief.consumer);
    assert.deepEqual(seen, [], 'the other worker never took over the running step');
  } finally {
    await thief.stop(500);
    await other.close();
    await t.close();
  }
});

test('queue depth tells how old the backlog is; the sweeper waits that long per function', async () => {
  const t = await startTestPlatform({ functions: registryOf(slow), tools: false, llm: 'offline', worker: false });
  try {
    const id = await trigger(t.api, 'slow', { ms: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [depth] = await t.p.queue.depth(['slow']);
    assert.equal(depth.lag, 1);
    assert.ok(depth.oldestMs >= 250, `oldest waiting message is ${depth.oldestMs} ms old`);

    // With the backlog's age added to its threshold, the waiting run is not re-published.
    const held = await sweep(t.p.db, { staleMs: 100, staleMsByFunction: { slow: 100 + depth.oldestMs + 5000 } });
    assert.deepEqual(held, []);
    const swept = await sweep(t.p.db, { staleMs: 100 });
    assert.deepEqual(swept?.map((r) => r.id), [id]);

    // Once the message is delivered, nothing is waiting any more.
    const delivered = await t.p.queue.read(['slow'], 'reader', 10, 100);
    assert.ok(delivered.length >= 1);
    const [after] = await t.p.queue.depth(['slow']);
    assert.equal(after.oldestMs, 0);
  } finally {
    await t.close();
  }
});
