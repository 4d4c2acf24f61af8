/**
 * Fan-out and join in one process (real PostgreSQL and Redis): a step returning
 * parallel(...) gets K branch rows at seqs N+1..N+K, each claimed, executed and
 * committed on its own; the join at N+K+1 runs once, after all of them, and sees their
 * outcomes in branch order and their patches applied in branch order. A branch failing
 * after its attempts fails the run (its siblings stopped), or with onBranchFailure
 * 'continue' reaches the join as { ok: false, error }. Retry, cancel and replay keep working.
 * Two worker processes running branches side by side: test/chaos/fanout.test.ts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: await loadFunctions(FIXTURES, ['fanout']), llm: 'offline' });
});
after(() => t.close());

interface Outcome {
  index: number;
  step: string;
  seq: number;
  ok: boolean;
  output: { i: number; of: number } | null;
  error: { code: string; message: string } | null;
}

test('a fan-out of 3: branch rows in seq order, the join once with every outcome in order, patches applied in branch order', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 3, delayMs: 50 });
  const { run, steps, attempts } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.status, s.branch, s.fanoutSeq, s.nextStep]),
    [
      [0, 'plan', 'succeeded', null, null, 'join'],
      [1, 'work', 'succeeded', 1, 0, null],
      [2, 'work', 'succeeded', 2, 0, null],
      [3, 'work', 'succeeded', 3, 0, null],
      [4, 'join', 'succeeded', null, null, null],
    ],
  );
  assert.deepEqual(steps.slice(1, 4).map((s) => s.input), [{ i: 1 }, { i: 2 }, { i: 3 }]);
  assert.equal(attempts.filter((a) => a.seq === 4).length, 1, 'the join ran once');
  const output = run.output as { branches: Outcome[]; notes: string[]; planned: number };
  assert.deepEqual(
    output.branches.map((b) => [b.index, b.step, b.seq, b.ok, b.output?.i, b.output?.of, b.error]),
    [[1, 'work', 1, true, 1, 3, null], [2, 'work', 2, true, 2, 3, null], [3, 'work', 3, true, 3, 3, null]],
  );
  assert.deepEqual(output.notes, ['planned', 'branch 1', 'branch 2', 'branch 3'], 'branch patches in branch order, after the fan-out’s');
  assert.equal(output.planned, 3);
  const join = steps[4];
  for (const b of steps.slice(1, 4)) assert.ok(join.startedAt >= (b.finishedAt as Date), 'the join started after every branch committed');
  assert.equal(run.branches, 0);
});

test('a branch failing after its attempts fails the run by default; its error is kept, the join never runs', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 20, failBranch: 2 });
  const { run, steps, attempts } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; message: string; step: string; seq: number; branch: number; attempt: number };
  assert.deepEqual([error.code, error.step, error.seq, error.branch, error.attempt], ['step_error', 'work', 2, 2, 2]);
  assert.match(error.message, /branch 2 always fails/);
  assert.deepEqual(attempts.filter((a) => a.seq === 2).map((a) => [a.attempt, a.status]), [[1, 'failed'], [2, 'failed']], 'retried up to maxAttempts');
  assert.ok(!steps.some((s) => s.name === 'join'), 'no join');
});

test("onBranchFailure 'continue': the join sees the failed branch's error in its place", async () => {
  const id = await trigger(t.api, 'fanout', { branches: 3, delayMs: 20, failBranch: 2, onBranchFailure: 'continue' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const output = run.output as { branches: Outcome[]; notes: string[] };
  assert.deepEqual(output.branches.map((b) => [b.index, b.ok, b.output?.i ?? null, b.error?.code ?? null]), [
    [1, true, 1, null],
    [2, false, null, 'step_error'],
    [3, true, 3, null],
  ]);
  assert.match(output.branches[1].error?.message ?? '', /branch 2 always fails \(attempt 2\)/);
  assert.deepEqual(output.notes, ['planned', 'branch 1', 'branch 3']);
  assert.deepEqual(steps.map((s) => [s.seq, s.status]), [[0, 'succeeded'], [1, 'succeeded'], [2, 'failed'], [3, 'succeeded'], [4, 'succeeded']]);
});
