/**
 * Poison steps stop: a step that kills its own worker (SIGKILL, as an out-of-memory
 * kill or a native crash would) is claimed again only until BATON_MAX_CLAIMS claims
 * of it have ended without a commit or a failure record; then the run fails with
 * `crash_loop`, and its step and attempt rows say so. The test restarts the workers
 * as they die, like a Deployment would, and counts the model calls the step made. A run's
 * first step that dies before any outside call ran unclaimed the first time; every later
 * try is a claim (the message is reclaimed), so it ends the same way, one death later.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { and, eq } from 'drizzle-orm';
import { stepAttempts } from '../../schema/tables.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { type BatonProcess, runAlone, spawnBaton, stopAll, teardown } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const MAX_CLAIMS = 3;
const WORKERS = 2;

runAlone();

/** Workers restarted as they die (like a Deployment would, boundedly here); counts the deaths. */
function restartingWorkers(env: Record<string, string>, defer: (fn: () => unknown) => void): { deaths: () => number } {
  const all: BatonProcess[] = [];
  defer(() => stopAll(all));
  let stopping = false;
  defer(() => {
    stopping = true; // runs first: no replacement for the workers stopped below
  });
  let deaths = 0;
  const spawnWorker = () => {
    const w = spawnBaton('worker', env, `poisoned${all.length + 1}`);
    all.push(w);
    void w.exited.then(({ signal }) => {
      if (signal === 'SIGKILL') deaths++;
      if (!stopping && all.length < 20) spawnWorker();
    });
  };
  for (let i = 0; i < WORKERS; i++) spawnWorker();
  return { deaths: () => deaths };
}

test('a step that kills its worker fails the run with crash_loop after BATON_MAX_CLAIMS claims', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, tools: false, functions: await loadFunctions(FIXTURES, ['poison']) });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_LEASE_MS: '1000', BATON_MAX_CLAIMS: String(MAX_CLAIMS) };
  const fleet = restartingWorkers(env, defer);

  const started = Date.now();
  const id = await trigger(t.api, 'poison', {});
  const { run, steps } = await waitForRun(t.p, id, undefined, 60_000);
  const tookMs = Date.now() - started;

  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; step: string; seq: number; attempt: number; message: string; retryable: boolean };
  assert.deepEqual([error.code, error.step, error.seq, error.attempt, error.retryable], ['crash_loop', 'swallow', 1, 1, false]);
  assert.match(error.message, new RegExp(`claimed ${MAX_CLAIMS} times`));
  assert.equal(t.llm?.calls.length, MAX_CLAIMS, 'the step ran (and called the model) once per claim, then never again');
  assert.equal(fleet.deaths(), MAX_CLAIMS, 'each claim killed its worker');

  const swallow = steps[1];
  assert.deepEqual([swallow.name, swallow.status, (swallow.error as { code: string }).code], ['swallow', 'failed', 'crash_loop']);
  const [attempt] = await t.p.db.select().from(stepAttempts).where(and(eq(stepAttempts.runId, id), eq(stepAttempts.seq, 1)));
  assert.deepEqual([attempt.attempt, attempt.status, (attempt.error as { code: string }).code], [1, 'failed', 'crash_loop']);
  assert.ok(attempt.finishedAt, 'the attempt is closed');

  // The workers live on and run other work: the poison is stopped, not the fleet.
  const safe = await trigger(t.api, 'poison', { safe: true });
  assert.equal((await waitForRun(t.p, safe, undefined, 30_000)).run.status, 'succeeded');
  console.log(`crash loop: ${MAX_CLAIMS} claims, each SIGKILLed its worker; the run failed crash_loop ${(tookMs / 1000).toFixed(1)} s after it started`);
});

test('a first step that kills its worker before any outside call also ends in crash_loop: its first try ran unclaimed, every later one is claimed', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['quick-poison']) });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_LEASE_MS: '1000', BATON_MAX_CLAIMS: String(MAX_CLAIMS) };
  const fleet = restartingWorkers(env, defer);

  const id = await trigger(t.api, 'quick-poison', {});
  const { run, steps } = await waitForRun(t.p, id, undefined, 60_000);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; step: string; seq: number; message: string };
  assert.deepEqual([error.code, error.step, error.seq], ['crash_loop', 'explode', 0]);
  assert.match(error.message, new RegExp(`claimed ${MAX_CLAIMS} times`));
  // The unclaimed first try, then one death per claim: the reclaimed message is claimed before its step runs.
  assert.equal(fleet.deaths(), MAX_CLAIMS + 1);
  assert.deepEqual([steps[0].name, steps[0].status], ['explode', 'failed']);

  const safe = await trigger(t.api, 'quick-poison', { safe: true });
  assert.equal((await waitForRun(t.p, safe, undefined, 30_000)).run.status, 'succeeded');
});
