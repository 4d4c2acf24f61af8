/**
 * Spike: a burst of 200 concurrent reviews through the HTTP API (`baton api`) onto
 * 3 `baton worker` processes (concurrency 32 each), the LLM taking 200–800 ms a call.
 * Every POST answers 202 at once; every run succeeds; no step comes near its timeout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inArray } from 'drizzle-orm';
import { steps } from '../../schema/tables.ts';
import { submitRun, verifyReviewRuns, waitForRuns } from '../helpers/chaos.ts';
import { startTestPlatform } from '../helpers/platform.ts';
import { startApiProcess, startWorkerProcess, stopAll, teardown, runAlone } from '../helpers/processes.ts';

const RUNS = 200;
const STEP_TIMEOUT_MS = 120_000; // pr-review's function default

runAlone();

test('spike: 200 runs at once through the API on 3 workers all succeed', { timeout: 180_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, llm: { delayMs: [200, 800] } });
  defer(() => t.close());
  // A larger pool than the tests' default (4): 200 steps in flight on 3 workers; 4 processes × 10 stays well under max_connections.
  const env = { ...t.env, BATON_CONCURRENCY: '32', BATON_DB_POOL: '10' };
  const procs = await Promise.all([startApiProcess(env), ...[1, 2, 3].map((i) => startWorkerProcess(env, `spike${i}`))]);
  defer(() => stopAll(procs));
  const api = procs[0] as Awaited<ReturnType<typeof startApiProcess>>;

  const started = Date.now();
  const posted = await Promise.all(
    Array.from({ length: RUNS }, (_, i) => submitRun(api.url, { repo: 'acme/shop', pr: i + 1 })),
  );
  const postMs = Date.now() - started;
  const statuses = posted.flatMap((p) => p.statuses);
  assert.deepEqual([...new Set(statuses)], [202], 'every POST answered 202');
  const ids = posted.map((p) => p.id);

  await waitForRuns(t, ids, 120_000);
  const totalMs = Date.now() - started;
  const report = await verifyReviewRuns(t, ids);

  const rows = await t.p.db.select().from(steps).where(inArray(steps.runId, ids));
  assert.equal(rows.length, RUNS * 3);
  const over = rows.filter((s) => s.attempt !== 1 || s.error !== null || (s.durationMs ?? Infinity) >= STEP_TIMEOUT_MS);
  assert.deepEqual(over.map((s) => [s.runId, s.seq, s.attempt, s.error]), [], 'no step failed, retried or came near its timeout');
  const durations = rows.map((s) => s.durationMs ?? 0).sort((a, b) => a - b);
  const workers = new Set(rows.map((s) => s.worker?.replace(/-[0-9a-f]+$/, '')));
  console.log(
    `spike: ${RUNS} POSTs → 202 in ${postMs} ms; ${RUNS} runs on ${workers.size} workers all succeeded in ${(totalMs / 1000).toFixed(1)} s; ` +
      `step p50 ${durations[Math.floor(durations.length / 2)]} ms, max ${durations.at(-1)} ms (timeout ${STEP_TIMEOUT_MS} ms); ` +
      `${report.comments} comments, duplicates ${report.duplicates}`,
  );
});
