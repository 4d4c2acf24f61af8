/**
 * What one step transition costs in Redis, counted with MONITOR on a private
 * redis-server while a worker runs one 20-step `chain` run alone. Steps are counted by
 * command, split into the step's own path and the background loops (which run on a
 * timer, not per step). The waste this guards against: an XGROUP CREATE per enqueue,
 * two PUBLISHes per step, the next step's XADD and the ack in two round trips.
 *
 * A worker runs a chain in process (each commit claims the next step): then the run
 * touches Redis only for its first message and its ack. A step that hands on through
 * the queue (the worker draining, POST /invoke's dispatcher) does it in one MULTI.
 * Steps in flight keep their entries fresh with one XCLAIM per heartbeat for them all.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { loadFunctions, registryOf } from '../../runtime/functions.ts';
import type { Platform } from '../../runtime/platform.ts';
import { connectRedis } from '../../runtime/queue/redis.ts';
import { type WorkerOptions, createWorker } from '../../runtime/worker/worker.ts';
import { ROOT, teardown } from '../helpers/processes.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const STEPS = 20;
/** Commands the timers send (reclaim scan, mover, sweeper, housekeeping), not the steps. */
const BACKGROUND = new Set(['XPENDING', 'EVAL', 'EVALSHA', 'XINFO', 'XTRIM', 'XRANGE', 'PING']);

/** The step path's command on a MONITOR line, or null for a background loop's or a script's. */
function stepCommand(line: string): string | null {
  const cmd = /"([A-Za-z]+)"/.exec(line)?.[1]?.toUpperCase();
  if (!cmd || /\[\d+ lua\]/.test(line) || BACKGROUND.has(cmd)) return null;
  return cmd;
}

/**
 * Waits until the step path has sent nothing new for 200 ms (at most 10 s): the last commit
 * is seen before the worker acks the run's message and announces its end. The blocking read
 * is not counted: an idle worker sends it again every second.
 */
async function quiet(lines: readonly string[]) {
  const deadline = Date.now() + 10_000;
  let seen = -1;
  for (;;) {
    const now = lines.filter((l) => {
      const cmd = stepCommand(l);
      return cmd !== null && cmd !== 'XREADGROUP';
    }).length;
    if (now === seen || Date.now() > deadline) return;
    seen = now;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface Counted {
  counts: Map<string, number>;
  roundTrips: number;
  per: (cmd: string) => number;
}

type Cleanup = { after(fn: () => Promise<void>): void };

/**
 * A platform and a worker on a private redis-server whose every command is recorded
 * (MONITOR) from the moment this returns. Cleanups run last-registered-first: the worker
 * stops before the platform, Redis last.
 */
async function monitored(tc: Cleanup, platform: Omit<NonNullable<Parameters<typeof startTestPlatform>[0]>, 'worker'>, worker: (p: Platform) => WorkerOptions = () => ({})) {
  const defer = teardown(tc);
  const redis = await startRedisServer();
  defer(() => redis.stop());
  const t = await startTestPlatform({ ...platform, worker: false, env: { ...platform.env, REDIS_URL: redis.url } });
  defer(() => t.close());
  const w = createWorker(t.p, worker(t.p));
  await w.start();
  defer(() => w.stop(2000));
  const monitor = await connectRedis({ url: redis.url });
  defer(() => monitor.destroy());
  const lines: string[] = [];
  await monitor.monitor((line) => lines.push(String(line)));
  return { t, lines };
}

/** Runs one chain run of STEPS steps and counts the step path's Redis commands. */
async function countRun(continueInProcess: boolean, tc: Cleanup): Promise<Counted> {
  const functions = await loadFunctions(path.join(ROOT, 'functions'), ['chain']);
  const { t, lines } = await monitored(
    tc,
    { functions, tools: false, llm: 'offline' },
    (p) =>
      continueInProcess
        ? {}
        : // Every step hands on through the queue, as a draining worker's or the dispatcher's do.
          { execute: (d, stop, hooks) => executeStep(p, d.function, d.message, { worker: 'handing-on', shutdown: stop, ...hooks }) },
  );
  const id = await trigger(t.api, 'chain', { steps: STEPS });
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  await quiet(lines);

  const counts = new Map<string, number>();
  let roundTrips = 0;
  let inMulti = false;
  for (const line of lines) {
    const cmd = stepCommand(line);
    if (!cmd) continue;
    counts.set(cmd, (counts.get(cmd) ?? 0) + 1);
    // A MULTI … EXEC block is written and answered as one round trip.
    if (cmd === 'MULTI') inMulti = true;
    if (!inMulti) roundTrips++;
    if (cmd === 'EXEC') {
      inMulti = false;
      roundTrips++;
    }
  }
  console.log(
    `redis per step of a ${STEPS}-step run${continueInProcess ? ' (in process)' : ' (handed on through the queue)'}: ${(roundTrips / STEPS).toFixed(2)} round trips ` +
      `(${[...counts].map(([c, n]) => `${c} ${(n / STEPS).toFixed(2)}`).join(', ')}), background loops not counted`,
  );
  return { counts, roundTrips, per: (cmd: string) => (counts.get(cmd) ?? 0) / STEPS };
}

test('a chain run in process: one XADD (the API\'s) and one XACK for the whole run, at most one PUBLISH per step, no XGROUP CREATE', async (tc) => {
  const { counts, roundTrips, per } = await countRun(true, tc);
  assert.equal(counts.get('XGROUP') ?? 0, 0, 'no consumer group is created while the run goes on');
  assert.ok(per('PUBLISH') <= 1 + 1 / STEPS, `one PUBLISH per step at most, saw ${counts.get('PUBLISH')}`);
  assert.equal(counts.get('XADD'), 1, 'the first step\'s message only: every later step is claimed by the commit before it');
  assert.equal(counts.get('MULTI') ?? 0, 0, 'no hand-on through the queue');
  assert.equal(counts.get('XACK'), 1, 'the message is acked once, when the run is done');
  assert.ok((counts.get('XREADGROUP') ?? 0) <= 2, 'read once');
  assert.ok(roundTrips / STEPS <= 1.5, `${roundTrips} round trips for ${STEPS} steps`);
});

test('a step transition through the queue: one XREADGROUP at most, one PUBLISH, and the hand-on in one MULTI (XADD + XACK); no XGROUP CREATE', async (tc) => {
  const { counts, roundTrips, per } = await countRun(false, tc);
  assert.equal(counts.get('XGROUP') ?? 0, 0, 'no consumer group is created while the run goes on');
  assert.ok(per('PUBLISH') <= 1 + 1 / STEPS, `one PUBLISH per step at most, saw ${counts.get('PUBLISH')}`);
  assert.ok(per('XREADGROUP') <= 1 + 1 / STEPS, 'one read per step at most');
  // The API's XADD of the first step, then one XADD per hand-on, inside the MULTI with the ack.
  assert.equal(counts.get('XADD'), STEPS, 'one XADD per step');
  assert.equal(counts.get('MULTI'), STEPS - 1, 'every hand-on is one MULTI');
  assert.ok(roundTrips / STEPS <= 4, `${roundTrips} round trips for ${STEPS} steps`);
});

test('steps in flight touch their stream entries together: one XCLAIM per heartbeat, not one per step', async (tc) => {
  const IN_FLIGHT = 12;
  const napper = defineAgent({
    name: 'napper',
    input: v.object({}),
    start: 'nap',
    steps: { nap: async () => done(await new Promise((resolve) => setTimeout(() => resolve(null), 1500))) },
  });
  // A 600 ms lease beats every 200 ms: each step is touched about 7 times while it naps.
  const { t, lines } = await monitored(tc, { functions: registryOf(napper), tools: false, llm: 'offline', env: { BATON_LEASE_MS: '600' } });

  const ids = await Promise.all(Array.from({ length: IN_FLIGHT }, () => trigger(t.api, 'napper', {})));
  for (const id of ids) assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  const touches = lines.filter((l) => /"XCLAIM"/i.test(l) && /"JUSTID"/i.test(l));
  const entries = touches.reduce((n, l) => n + (l.match(/"\d+-\d+"/g)?.length ?? 0), 0);
  console.log(`${IN_FLIGHT} steps in flight: ${entries} entry touches in ${touches.length} XCLAIM commands`);
  assert.ok(entries >= IN_FLIGHT * 3, `every step is touched on its beats (${entries} touches)`);
  assert.ok(entries / touches.length >= IN_FLIGHT / 2, `${entries} touches in ${touches.length} commands: they go together`);
});
