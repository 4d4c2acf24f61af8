/**
 * Reclaim does not wait for a free slot. A worker whose every slot is busy still looks
 * for messages a dead consumer left pending past a lease, and takes them at its next
 * free slot, ahead of the backlog of new messages: a dead worker's step must not wait
 * behind work that arrived after it (in a fleet that stays full, it would wait for the
 * whole backlog to drain).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { inArray } from 'drizzle-orm';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { steps } from '../../schema/tables.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const agent = defineAgent({
  name: 'napper',
  input: v.object({ ms: v.number() }),
  start: 'nap',
  steps: {
    nap: async (ctx) => {
      await sleep(ctx.input.ms, undefined, { signal: ctx.abortSignal });
      return done('rested');
    },
  },
});

test("a full worker takes a dead consumer's message at its next free slot, before the backlog", async (tc) => {
  const LEASE_MS = 600;
  const t = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_LEASE_MS: String(LEASE_MS) },
  });
  // The dead consumer read its message and claimed the step, then vanished.
  const orphan = await trigger(t.api, 'napper', { ms: 0 });
  const [d] = await t.p.queue.read(['napper'], 'dead', 10, 500);
  assert.equal(d.message.runId, orphan);
  assert.ok(await claimStep(t.p.db, { runId: orphan, function: 'napper', seq: 0, leaseOwner: 'dead/1', worker: 'dead', leaseMs: LEASE_MS }));

  // One slot, taken by a step that outlasts the dead consumer's lease several times over;
  // a backlog arrives behind it.
  const slow = await trigger(t.api, 'napper', { ms: 4 * LEASE_MS });
  const worker = createWorker(t.p, { concurrency: 1 });
  tc.after(async () => {
    await worker.stop(2000);
    await t.close();
  });
  await worker.start();
  const backlog = [];
  for (let i = 0; i < 4; i++) backlog.push(await trigger(t.api, 'napper', { ms: LEASE_MS / 2 }));

  for (const id of [slow, orphan, ...backlog]) assert.equal((await waitForRun(t.p, id, undefined, 30_000)).run.status, 'succeeded');
  const rows = await t.p.db.select({ runId: steps.runId, worker: steps.worker, startedAt: steps.startedAt }).from(steps).where(inArray(steps.runId, [slow, orphan, ...backlog]));
  const order = rows.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime()).map((r) => r.runId);
  assert.equal(rows.find((r) => r.runId === orphan)?.worker, worker.consumer, 'the live worker ran the orphan');
  assert.deepEqual(order.slice(0, 2), [slow, orphan], 'the orphan ran as soon as the slot was free, before any of the backlog');
});
