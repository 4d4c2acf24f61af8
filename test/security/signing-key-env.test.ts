/**
 * The signing key leaves the environment once loaded: a worker given
 * BATON_TOOL_SIGNING_KEY (as Kubernetes gives it, from a Secret) keeps it in memory
 * only, so nothing the step starts (a dependency shelling out, a git or a compiler)
 * inherits the key that mints capability tokens. The worker still signs with it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { type Child, ROOT, spawnNode } from '../helpers/spawn.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures/env-probe');
let t: TestPlatform;
let worker: Child;

before(async () => {
  const { loadFunctions } = await import('../../runtime/functions.ts');
  t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['env-probe']) });
  const env: Record<string, string> = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES };
  assert.ok(env.BATON_TOOL_SIGNING_KEY, 'the worker is given the key in its environment');
  worker = spawnNode(['scripts/baton.ts', 'worker', 'env-probe'], env);
  await worker.waitFor(/baton worker \S+: env-probe/);
});

after(async () => {
  await worker?.stop();
  await t?.close();
});

test('a child process of a step never inherits BATON_TOOL_SIGNING_KEY, nor sees it in the worker', async () => {
  const id = await trigger(t.api, 'env-probe', {});
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.output, { child: [], self: [] });
  assert.doesNotMatch(worker.stderr(), /no key to sign tool capability tokens/, 'the worker loaded the key');
});
