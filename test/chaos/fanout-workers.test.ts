/**
 * Fan-out on two worker processes (real PostgreSQL, Redis and `baton worker`
 * processes): the two branches of a fan-out, each taking ~1 s, run at the same time
 * on different workers; the join runs once, after both, with their results in order
 * (1 s, not less: a worker slowed by the other tests' load still overlaps them). Each worker runs one step at a time (BATON_CONCURRENCY=1), so two branches
 * whose execution windows overlap can only have run on two workers: the test checks
 * both the overlap and the worker names. A failing branch fails the run by default;
 * with onBranchFailure 'continue' the join sees its error instead.
 * Runs alone (runAlone): it measures overlapping windows.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { runAlone, startWorkerProcess, stopAll, teardown } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const RUNS = 3;

runAlone();

interface Work {
  i: number;
  worker: string;
  pid: number;
  startedAt: number;
  endedAt: number;
}
interface Outcome {
  index: number;
  ok: boolean;
  output: Work | null;
  error: { code: string; message: string } | null;
}

test('two branches of ~1 s run at the same time on two worker processes; the join runs once, after both, results in order', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['fanout']) });
  defer(() => t.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_CONCURRENCY: '1' };
  const workers = await Promise.all([startWorkerProcess(env, 'left'), startWorkerProcess(env, 'right')]);
  defer(() => stopAll(workers));

  for (let n = 0; n < RUNS; n++) {
    const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 1000 });
    const { run, steps, attempts } = await waitForRun(t.p, id, undefined, 30_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const [b1, b2] = [steps[1], steps[2]];
    assert.deepEqual([b1.branch, b2.branch, steps[3].name], [1, 2, 'join']);

    // Different workers, overlapping windows: from the rows (claim to commit) and from the bodies' own clocks.
    assert.notEqual(b1.worker, b2.worker, 'the branches ran on different workers');
    assert.ok(b1.startedAt < (b2.finishedAt as Date) && b2.startedAt < (b1.finishedAt as Date), `windows overlap: ${b1.startedAt.toISOString()}–${b1.finishedAt?.toISOString()} and ${b2.startedAt.toISOString()}–${b2.finishedAt?.toISOString()}`);
    const out = run.output as { branches: Outcome[]; joinedBy: string };
    const [w1, w2] = out.branches.map((b) => b.output as Work);
    assert.notEqual(w1.pid, w2.pid, 'two processes ran the branch bodies');
    assert.ok(w1.startedAt < w2.endedAt && w2.startedAt < w1.endedAt, 'the bodies ran at the same time');
    assert.ok(b1.worker?.startsWith(w1.worker) && b2.worker?.startsWith(w2.worker), 'rows and bodies agree on who ran what');

    // The join: once, after both commits, seeing both results in branch order.
    assert.equal(attempts.filter((a) => a.seq === 3).length, 1, 'one attempt of the join');
    assert.ok(steps[3].startedAt >= (b1.finishedAt as Date) && steps[3].startedAt >= (b2.finishedAt as Date), 'the join started after both branches committed');
    assert.deepEqual(out.branches.map((b) => [b.index, b.ok, b.output?.i]), [[1, true, 1], [2, true, 2]]);
    console.log(
      `fan-out ${n + 1}: branch 1 on ${b1.worker} ${w1.startedAt % 100_000}–${w1.endedAt % 100_000} ms, ` +
        `branch 2 on ${b2.worker} ${w2.startedAt % 100_000}–${w2.endedAt % 100_000} ms (overlap ${Math.min(w1.endedAt, w2.endedAt) - Math.max(w1.startedAt, w2.startedAt)} ms); join on ${steps[3].worker}`,
    );
  }

  // A branch failing after its attempts: the run fails (default), or the join sees the error ('continue').
  const failing = await trigger(t.api, 'fanout', { branches: 2, delayMs: 50, failBranch: 1 });
  const failed = await waitForRun(t.p, failing, undefined, 30_000);
  assert.equal(failed.run.status, 'failed');
  assert.deepEqual([(failed.run.error as { branch: number }).branch, (failed.run.error as { code: string }).code], [1, 'step_error']);
  assert.ok(!failed.steps.some((s) => s.name === 'join'), 'no join');

  const tolerant = await trigger(t.api, 'fanout', { branches: 2, delayMs: 50, failBranch: 1, onBranchFailure: 'continue' });
  const joined = await waitForRun(t.p, tolerant, undefined, 30_000);
  assert.equal(joined.run.status, 'succeeded', JSON.stringify(joined.run.error));
  const seen = (joined.run.output as { branches: Outcome[] }).branches;
  assert.deepEqual(seen.map((b) => [b.index, b.ok, b.error?.code ?? null]), [[1, false, 'step_error'], [2, true, null]]);
  assert.match(seen[0].error?.message ?? '', /branch 1 always fails/);
});
