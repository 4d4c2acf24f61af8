/**
 * What one step transition costs in Redis, counted with MONITOR on a private
 * redis-server while a worker runs one 20-step `chain` run alone. Steps are counted by
 * command, split into the step's own path and the background loops (which run on a
 * timer, not per step). The waste this guards against: an XGROUP CREATE per enqueue,
 * two PUBLISHes per step, the next step's XADD and the ack in two round trips.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { connectRedis } from '../../runtime/queue/redis.ts';
import { ROOT } from '../helpers/processes.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const STEPS = 20;
/** Commands the timers send (reclaim scan, mover, sweeper, housekeeping), not the steps. */
const BACKGROUND = new Set(['XPENDING', 'EVAL', 'EVALSHA', 'XINFO', 'XTRIM', 'XRANGE', 'PING']);

test('a step transition: one XREADGROUP at most, one PUBLISH, and the hand-on in one MULTI (XADD + XACK); no XGROUP CREATE', async (tc) => {
  const redis = await startRedisServer();
  tc.after(() => redis.stop());
  const functions = await loadFunctions(path.join(ROOT, 'functions'), ['chain']);
  const t = await startTestPlatform({ functions, tools: false, llm: 'offline', env: { REDIS_URL: redis.url } });
  tc.after(() => t.close());

  const monitor = await connectRedis({ url: redis.url });
  tc.after(() => monitor.destroy());
  const lines: string[] = [];
  await monitor.monitor((line) => lines.push(String(line)));
  const id = await trigger(t.api, 'chain', { steps: STEPS });
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  await new Promise((resolve) => setTimeout(resolve, 100)); // the last step's notices

  const counts = new Map<string, number>();
  let roundTrips = 0;
  let inMulti = false;
  for (const line of lines) {
    const cmd = /"([A-Za-z]+)"/.exec(line)?.[1]?.toUpperCase();
    if (!cmd || /\[\d+ lua\]/.test(line) || BACKGROUND.has(cmd)) continue;
    counts.set(cmd, (counts.get(cmd) ?? 0) + 1);
    // A MULTI … EXEC block is written and answered as one round trip.
    if (cmd === 'MULTI') inMulti = true;
    if (!inMulti) roundTrips++;
    if (cmd === 'EXEC') {
      inMulti = false;
      roundTrips++;
    }
  }
  const per = (cmd: string) => (counts.get(cmd) ?? 0) / STEPS;
  console.log(
    `redis per step of a ${STEPS}-step run: ${(roundTrips / STEPS).toFixed(2)} round trips ` +
      `(${[...counts].map(([c, n]) => `${c} ${(n / STEPS).toFixed(2)}`).join(', ')}), background loops not counted`,
  );
  assert.equal(counts.get('XGROUP') ?? 0, 0, 'no consumer group is created while the run goes on');
  assert.ok(per('PUBLISH') <= 1 + 1 / STEPS, `one PUBLISH per step at most, saw ${counts.get('PUBLISH')}`);
  assert.ok(per('XREADGROUP') <= 1 + 1 / STEPS, 'one read per step at most');
  // The API's XADD of the first step, then one XADD per hand-on, inside the MULTI with the ack.
  assert.equal(counts.get('XADD'), STEPS, 'one XADD per step');
  assert.equal(counts.get('MULTI'), STEPS - 1, 'every hand-on is one MULTI');
  assert.ok(roundTrips / STEPS <= 4, `${roundTrips} round trips for ${STEPS} steps`);
});
