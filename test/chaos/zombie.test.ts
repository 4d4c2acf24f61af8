/**
 * Zombie worker: a worker frozen (SIGSTOP) mid-step past its lease, while another
 * worker takes the step over, then thawed (SIGCONT). Its late commit must be
 * rejected by the lease fence and the run's result must be the other worker's.
 *   1. Frozen right before its commit (BATON_FAULTS=before-commit=stop), thawed while
 *      the new owner is still inside its LLM call: the zombie's commit reaches the
 *      database first and the fence alone stops it.
 *   2. Frozen by the test in the middle of its LLM call, thawed after the other
 *      worker has finished: heartbeat or fence, its result is discarded.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startWorkerProcess, stopAll, type BatonProcess, teardown, runAlone } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');

runAlone();

test('zombie: a worker thawed after losing its lease cannot overwrite the new owner\'s result', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const held = new Map<number, () => void>();
  const hold = new Set([2, 3]); // the new owner's call in scene 1, the zombie's call in scene 2
  const t = await startTestPlatform({
    worker: false,
    tools: false,
    functions: await loadFunctions(FIXTURES, ['zombie']),
    llm: { gate: (n) => (hold.has(n) ? new Promise<void>((resolve) => held.set(n, resolve)) : undefined) },
  });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_LEASE_MS: '1000', BATON_LOG_LEVEL: 'warn' };
  const procs: BatonProcess[] = [];
  defer(() => stopAll(procs));
  const start = async (name: string, extra: Record<string, string> = {}) => {
    const w = await startWorkerProcess({ ...env, ...extra }, name);
    procs.push(w);
    return w;
  };
  const FENCED = /fence rejected the write/;

  // Scene 1: frozen at the commit; the fence is the only thing in the way.
  const a = await start('A', { BATON_FAULTS: 'before-commit=stop', BATON_TEST_HOOKS: '1' });
  const first = await trigger(t.api, 'zombie', { label: 'one' });
  await a.waitForLine(/"fault":"before-commit","signal":"SIGSTOP"/);
  const b = await start('B');
  await waitFor(() => held.has(2), 'B to take the step over (lease expired) and call the LLM', 20_000);
  a.signal('SIGCONT');
  await a.waitForLine(FENCED); // the zombie's commit hit the fence while B held the lease
  held.get(2)?.();
  const one = await waitForRun(t.p, first);
  assert.equal(one.run.status, 'succeeded');
  assert.equal((one.run.output as { by: string }).by, 'B', "the run's result is the new owner's");
  assert.match(one.steps[0].worker ?? '', /^B-/);
  assert.ok(a.alive, 'the zombie lives on');

  // Scene 2: frozen by the test during its LLM call, thawed after the new owner finished.
  await stopAll([a, b]);
  const c = await start('C');
  const second = await trigger(t.api, 'zombie', { label: 'two' });
  await waitFor(() => held.has(3), 'C to be in its LLM call');
  c.signal('SIGSTOP');
  held.get(3)?.(); // its answer waits in the frozen process's socket
  await start('D');
  const two = await waitForRun(t.p, second, undefined, 20_000);
  c.signal('SIGCONT');
  await c.waitForLine(/fence rejected the write|lease lost during the step/);
  const after = await waitForRun(t.p, second);
  assert.equal((two.run.output as { by: string }).by, 'D');
  assert.deepEqual(after.run.output, two.run.output, 'the result did not change after the zombie woke');
  const how = c.lines.some((l) => FENCED.test(l)) ? 'commit fenced' : 'heartbeat found the lease gone';
  console.log(
    `zombie: scene 1 — A frozen before its commit, B took over after the 1 s lease, A thawed: commit rejected by the fence, result B's; ` +
      `scene 2 — C frozen mid-LLM-call, D finished the run, C thawed: ${how}, result D's`,
  );
});
