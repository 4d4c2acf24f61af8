/**
 * Fault points are for tests only: BATON_FAULTS alone arms nothing (a production
 * process with a stray BATON_FAULTS runs its steps and says loudly that it ignores
 * it); only with BATON_TEST_HOOKS=1 as well does a worker die at the named moment,
 * and it says so loudly when it starts, before any step.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { spawnBaton, startWorkerProcess, stopAll, teardown } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');

test('BATON_FAULTS arms fault points only together with BATON_TEST_HOOKS=1, and says so at start', { timeout: 60_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['flaky']) });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_FAULTS: 'claimed=1' };

  const production = await startWorkerProcess(env, 'prod');
  defer(() => stopAll([production]));
  assert.ok(production.lines.some((l) => /WARNING.*BATON_FAULTS.*ignored.*BATON_TEST_HOOKS=1/.test(l)), production.lines.join('\n'));
  const id = await trigger(t.api, 'flaky', { mode: 'twice' });
  assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  assert.ok(production.alive, 'no fault point fired');
  assert.ok(!production.lines.some((l) => l.startsWith('{"fault"')));
  await stopAll([production]);

  const armed = spawnBaton('worker', { ...env, BATON_TEST_HOOKS: '1' }, 'armed');
  defer(() => stopAll([armed]));
  const warning = await armed.waitForLine(/WARNING.*fault points ARMED/);
  const banner = await armed.waitForLine(/^baton worker /);
  assert.ok(armed.lines.indexOf(warning) < armed.lines.indexOf(banner), 'the warning comes at start');
  await trigger(t.api, 'flaky', { mode: 'twice' });
  await armed.waitForLine(/^\{"fault":"claimed","signal":"SIGKILL"/);
  assert.equal((await armed.exited).signal, 'SIGKILL');
});
