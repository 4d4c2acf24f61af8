/**
 * Redis loses everything: FLUSHALL during a 100-run load on 3 worker processes.
 * The test runs its own redis-server (FLUSHALL on the shared one would wipe the
 * other tests' keys), so this is a real flush: streams, consumer groups, pending
 * lists and the delayed set all vanish. PostgreSQL is the truth: the workers
 * recreate their groups and the sweeper re-publishes the live runs; all succeed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inArray } from 'drizzle-orm';
import { createClient } from 'redis';
import { streamKey } from '../../runtime/queue/names.ts';
import { runs } from '../../schema/tables.ts';
import { verifyReviewRuns, waitForRuns } from '../helpers/chaos.ts';
import { startTestPlatform, trigger, waitFor } from '../helpers/platform.ts';
import { startWorkerProcess, stopAll, teardown, runAlone } from '../helpers/processes.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const RUNS = 100;

runAlone();

test('Redis flush: FLUSHALL during a 100-run load, all runs still succeed', { timeout: 180_000 }, async (tc) => {
  const defer = teardown(tc);
  const redis = await startRedisServer();
  defer(() => redis.stop());
  const t = await startTestPlatform({
    worker: false,
    llm: { delayMs: [200, 800] },
    env: { REDIS_URL: redis.url, BATON_LEASE_MS: '1000', BATON_SWEEP_AFTER_MS: '2000' },
  });
  defer(() => t.close());
  // 3 × 8 slots for 100 runs: most wake-ups wait in the stream, so the flush loses them.
  const env = { ...t.env, BATON_LOG_LEVEL: 'info', BATON_CONCURRENCY: '8' };
  const workers = await Promise.all([1, 2, 3].map((i) => startWorkerProcess(env, `flush${i}`)));
  defer(() => stopAll(workers));

  const started = Date.now();
  const ids = await Promise.all(Array.from({ length: RUNS }, (_, i) => trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: i + 1 })));
  // Flush in the thick of it: some runs done, others mid-way (a worker runs a run's steps
  // one after the other in process, so at most its slots' worth are mid-way at once), the
  // rest waiting in the stream.
  await waitFor(async () => {
    const rows = await t.p.db.select({ s: runs.status, n: runs.nextSeq }).from(runs).where(inArray(runs.id, ids));
    return rows.some((r) => r.s === 'succeeded') && rows.filter((r) => r.n >= 1 && r.s !== 'succeeded').length >= 8;
  }, 'the load to be under way', 60_000);
  const client = await createClient({ url: redis.url }).connect();
  const backlog = await client.xLen(streamKey(t.prefix, 'pr-review'));
  const live = (await t.p.db.select({ s: runs.status }).from(runs).where(inArray(runs.id, ids))).filter((r) => r.s !== 'succeeded').length;
  assert.equal(await client.flushAll(), 'OK');
  await client.close();

  await waitForRuns(t, ids, 120_000);
  const report = await verifyReviewRuns(t, ids);
  const swept = workers
    .flatMap((w) => w.lines)
    .filter((l) => l.includes('sweeper re-published'))
    .reduce((n, l) => n + Number(/"count":(\d+)/.exec(l)?.[1] ?? 0), 0);
  console.log(
    `redis flush: FLUSHALL (a stream of ${backlog} entries, its pending list and the delayed set lost) with ${live} of ${RUNS} runs live; sweeper re-published ${swept} runs; ` +
      `all ${RUNS} succeeded in ${((Date.now() - started) / 1000).toFixed(1)} s; ${report.comments} comments, duplicates ${report.duplicates}`,
  );
});
