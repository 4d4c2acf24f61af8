/**
 * Where repeats come from, counted at the tool servers themselves. A probe tool server
 * that does NOT deduplicate counts raw deliveries per idempotency key; the review tool
 * deduplicates (its ledger) and counts deliveries too. Worker processes die at each
 * moment of a step (fault points, in the probe's step and in the review's step), and
 * one is SIGKILLed while its call is held at the probe server. Then a clean worker
 * finishes every run.
 *
 * A call is delivered again only when its worker died after the call reached the
 * server and before the step's commit: `after-call`, `before-commit`, or killed while
 * the server held the call. Dying before the call went out (`during-call`) or after the
 * commit (`after-commit`) never repeats it. And the deduplicating tool turned each
 * repeat into one side effect: one comment per key, however many deliveries.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startProbeTool } from '../helpers/probe-tool.ts';
import { type BatonProcess, runAlone, spawnBaton, startWorkerProcess, stopAll, teardown } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const MOMENTS = ['during-call', 'after-call', 'before-commit', 'after-commit'] as const;
const STEPS = ['record', 'post'] as const; // the probe's call (seq 0), the review's (seq 1)
const BETWEEN_CALL_AND_COMMIT = new Set<string>(['after-call', 'before-commit']);

runAlone();

test('a tool call is delivered again only after a kill between the call and the commit, and the deduplicating tool keeps one side effect', { timeout: 240_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['probe-post']) });
  defer(() => t.close());
  const probe = await startProbeTool(t.keys.publicKeyPem);
  defer(() => probe.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_TOOL_PROBE_URL: probe.url, BATON_LEASE_MS: '1000' };
  const all: BatonProcess[] = [];
  defer(() => stopAll(all));

  // One scenario at a time: an armed worker alone takes the run and dies at its moment;
  // then a clean worker finishes it and stops (so no armed worker meets another's run).
  async function finish(id: string, name: string) {
    const clean = await startWorkerProcess(env, name);
    all.push(clean);
    const { run } = await waitForRun(t.p, id, undefined, 90_000);
    assert.equal(run.status, 'succeeded', `${name}: ${JSON.stringify(run.error)}`);
    clean.signal('SIGTERM');
    await clean.exited;
  }
  const scenarios: Array<{ id: string; moment: string; step: string }> = [];
  let pr = 0;
  for (const step of STEPS) {
    for (const moment of MOMENTS) {
      const w = spawnBaton('worker', { ...env, BATON_FAULTS: `${moment}@${step}=1`, BATON_TEST_HOOKS: '1' }, `${moment}-${step}`);
      all.push(w);
      await w.waitForLine(/^baton worker /, 60_000);
      const id = await trigger(t.api, 'probe-post', { pr: ++pr });
      const { signal } = await w.exited;
      assert.equal(signal, 'SIGKILL', `${moment}@${step}: the worker died at its fault point`);
      assert.ok(w.lines.some((l) => l.includes(`"fault":"${moment}"`)), `${moment}@${step}: announced`);
      await finish(id, `clean-${moment}-${step}`);
      scenarios.push({ id, moment, step });
    }
  }

  // A worker killed while its call is held at the probe server (in flight there).
  const holder = await startWorkerProcess(env, 'holder');
  all.push(holder);
  const heldId = await trigger(t.api, 'probe-post', { pr: pr + 1, hold: true });
  await waitFor(() => probe.held.has(`${heldId}:0`), 'the call to be held at the probe server', 60_000);
  holder.signal('SIGKILL');
  await holder.exited;
  await finish(heldId, 'clean-held');

  const comments = (await t.tools?.reviews.list({})) ?? [];
  const commentsOf = (key: string) => comments.filter((c) => c.idempotencyKey === key);
  const lines: string[] = [];
  for (const { id, moment, step } of scenarios) {
    const probeCalls = probe.deliveries.get(`${id}:0`);
    const [comment, ...more] = commentsOf(`${id}:1`);
    lines.push(`${moment}@${step}: probe ${probeCalls}, review ${comment?.deliveries}`);
    assert.equal(probeCalls, step === 'record' && BETWEEN_CALL_AND_COMMIT.has(moment) ? 2 : 1, `${moment}@${step}: raw deliveries of the probe's call`);
    assert.equal(more.length, 0, `${moment}@${step}: one comment for the key`);
    assert.equal(comment?.deliveries, step === 'post' && BETWEEN_CALL_AND_COMMIT.has(moment) ? 2 : 1, `${moment}@${step}: deliveries of the review's call`);
  }
  assert.equal(probe.deliveries.get(`${heldId}:0`), 2, 'the call held at the server when its worker died was delivered again');
  assert.equal(commentsOf(`${heldId}:1`).length, 1);
  console.log(`tool deliveries after kills: ${lines.join('; ')}; held at the server: probe ${probe.deliveries.get(`${heldId}:0`)}`);
});
