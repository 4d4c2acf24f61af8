/**
 * Retries and dead ends on worker processes: a step failing twice then succeeding
 * ends `succeeded` with attempt 3 (a worker is SIGKILLed while its retry waits in
 * the delayed set: the other worker's mover promotes it); a step always failing ends
 * `failed` after its maxAttempts with the error stored, and retry restarts it as
 * attempt 4, keeping the failed attempts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startWorkerProcess, stopAll, teardown, runAlone } from '../helpers/processes.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');

runAlone();

test('retries and dead ends on worker processes', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({
    worker: false,
    tools: false,
    llm: 'offline',
    functions: await loadFunctions(FIXTURES, ['flaky']),
    env: { BATON_RETRY_BASE_MS: '400', BATON_RETRY_MAX_MS: '1000', BATON_LEASE_MS: '1000' },
  });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES };
  const workers = await Promise.all(['r1', 'r2'].map((n) => startWorkerProcess(env, n)));
  defer(() => stopAll(workers));
  const healed = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'baton-flaky-')), 'healed');
  defer(() => fs.rmSync(path.dirname(healed), { recursive: true, force: true }));

  const twice = await trigger(t.api, 'flaky', { mode: 'twice' });
  const always = await trigger(t.api, 'flaky', { mode: 'always', healedFile: healed });

  // Kill one worker while the first retry waits in the delayed set.
  await waitFor(async () => (await getRunWithSteps(t.p.db, twice))?.run.attempt === 2, 'the first failure');
  workers[0].signal('SIGKILL');

  const ok = await waitForRun(t.p, twice, undefined, 30_000);
  assert.equal(ok.run.status, 'succeeded');
  const wobble = ok.steps[1];
  assert.deepEqual([wobble.name, wobble.status, wobble.attempt, wobble.error], ['wobble', 'succeeded', 3, null]);
  assert.deepEqual(
    ok.attempts.filter((a) => a.seq === 1).map((a) => [a.attempt, a.status, (a.error as { attempt?: number } | null)?.attempt ?? null]),
    [[1, 'failed', 1], [2, 'failed', 2], [3, 'succeeded', null]],
    'every attempt is kept, with its error',
  );

  const dead = await waitForRun(t.p, always, undefined, 30_000);
  assert.equal(dead.run.status, 'failed');
  const error = dead.run.error as { code: string; message: string; step: string; attempt: number };
  assert.deepEqual([error.code, error.step, error.attempt], ['step_error', 'wobble', 3]);
  assert.match(error.message, /always fails \(attempt 3\)/);
  assert.deepEqual([dead.steps[1].status, dead.steps[1].attempt], ['failed', 3]);

  fs.writeFileSync(healed, 'ok');
  const res = await t.api.request(`/v1/runs/${always}/retry`, { method: 'POST' });
  assert.equal(res.status, 202);
  const retried = await waitForRun(t.p, always, undefined, 30_000);
  assert.equal(retried.run.status, 'succeeded');
  assert.deepEqual(retried.steps.map((s) => [s.name, s.status, s.attempt]), [['first', 'succeeded', 1], ['wobble', 'succeeded', 4]]);
  assert.deepEqual(retried.attempts.filter((a) => a.seq === 1).map((a) => a.status), ['failed', 'failed', 'failed', 'succeeded'], 'the retry erased no failure');
  console.log(
    'retries: "twice" succeeded on attempt 3 (a worker SIGKILLed during its backoff); ' +
      `"always" failed after 3 attempts with "${error.message}", then POST /retry restarted it from "wobble" and it succeeded`,
  );
});
