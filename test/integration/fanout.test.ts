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
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { documentedSql } from '../helpers/docs.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');

let t: TestPlatform;
before(async () => {
  // Snapshots every 2 steps: some land on fan-out and join steps, and branches must load past them correctly.
  t = await startTestPlatform({ functions: await loadFunctions(FIXTURES, ['fanout']), llm: 'offline', env: { BATON_SNAPSHOT_EVERY: '2' } });
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

test('POST /retry of a run a branch failed queues the branches that had not succeeded again; the join then runs once', async () => {
  const healedFile = path.join(t.config.dataDir, `healed-${Date.now()}`);
  const id = await trigger(t.api, 'fanout', { branches: 3, delayMs: 20, failBranch: 2, healedFile });
  const failed = await waitForRun(t.p, id);
  assert.equal(failed.run.status, 'failed');
  fs.writeFileSync(healedFile, 'ok');
  const res = await t.api.request(`/v1/runs/${id}/retry`, { method: 'POST' });
  assert.equal(res.status, 202);
  const { run, steps, attempts } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.status]), [[0, 'plan', 'succeeded'], [1, 'work', 'succeeded'], [2, 'work', 'succeeded'], [3, 'work', 'succeeded'], [4, 'join', 'succeeded']]);
  assert.deepEqual(attempts.filter((a) => a.seq === 2).map((a) => [a.attempt, a.status]), [[1, 'failed'], [2, 'failed'], [3, 'succeeded']], 'attempt numbers go on after a retry');
  assert.equal(attempts.filter((a) => a.seq === 4).length, 1, 'the join ran once');
  const output = run.output as { branches: Outcome[] };
  assert.deepEqual(output.branches.map((b) => [b.index, b.ok]), [[1, true], [2, true], [3, true]]);
  fs.rmSync(healedFile, { force: true });
});

test('cancel during a fan-out stops every branch: in-flight calls aborted, queued branches never run', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 30_000 });
  await waitFor(async () => (await getRunWithSteps(t.p.db, id))?.steps.filter((s) => s.branch !== null && s.status === 'running').length === 2, 'both branches running');
  const res = await t.api.request(`/v1/runs/${id}/cancel`, { method: 'POST' });
  assert.equal(res.status, 200);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'cancelled');
  assert.deepEqual(steps.map((s) => [s.seq, s.status, (s.error as { code?: string } | null)?.code ?? null]), [[0, 'succeeded', null], [1, 'failed', 'cancelled'], [2, 'failed', 'cancelled']]);
  await waitFor(() => t.p.inflight.size === 0, 'the branches’ calls aborted', 5000);
});

test('SSE: step events carry the branch; replay from a branch is refused (4xx naming fromSeq), from the fan-out it runs again', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 20 });
  await waitForRun(t.p, id);
  const res = await t.api.request(`/v1/runs/${id}/events`);
  const text = await res.text();
  const events = [...text.matchAll(/event: (\S+)\ndata: (.*)\n/g)].map((m) => [m[1], JSON.parse(m[2]) as { seq?: number; branch?: number | null; fanoutSeq?: number | null }] as const);
  const started = events.filter(([e]) => e === 'step.started').map(([, d]) => [d.seq, d.branch, d.fanoutSeq]);
  assert.deepEqual(started, [[0, null, null], [1, 1, 0], [2, 2, 0], [3, null, null]]);
  assert.deepEqual(events.filter(([e]) => e === 'step.completed').map(([, d]) => [d.seq, d.branch]), [[0, null], [1, 1], [2, 2], [3, null]]);

  // Reconnecting inside the fan-out: its branch events come again (same ids), nothing is lost.
  const again = await (await t.api.request(`/v1/runs/${id}/events`, { headers: { 'Last-Event-ID': '2-1-0' } })).text();
  const ids = [...again.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]);
  assert.deepEqual(ids, ['1-1-0', '1-1-1', '2-1-0', '2-1-1', '3-1-0', '3-1-1', 'end']);

  const bad = await t.api.request(`/v1/runs/${id}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fromSeq: 1 }) });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(await bad.json()), /fromSeq: step 1 is branch 1 of the fan-out at seq 0/);
  for (const fromSeq of [0, 3]) {
    const replay = await t.api.request(`/v1/runs/${id}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fromSeq }) });
    assert.equal(replay.status, 202);
    const { id: newId } = (await replay.json()) as { id: string };
    const { run, steps } = await waitForRun(t.p, newId);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(steps.map((s) => [s.seq, s.name, s.branch]), [[0, 'plan', null], [1, 'work', 1], [2, 'work', 2], [3, 'join', null]]);
    assert.deepEqual((run.output as { branches: Outcome[] }).branches.map((b) => [b.index, b.ok, b.output?.i]), [[1, true, 1], [2, true, 2]], `replay from ${fromSeq}: the join sees the branches`);
  }
});

test("the README's fan-out query shows the latest fan-out's branches in order", async () => {
  const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 10 });
  await waitForRun(t.p, id);
  const rows = await query<{ fanout_seq: number; branch: number; seq: number; status: string }>(t.p.db, sql.raw(documentedSql('README.md', "A fan-out's branches side by side")));
  assert.deepEqual(rows.map((r) => [r.fanout_seq, r.branch, r.seq, r.status]), [[0, 1, 1, 'succeeded'], [0, 2, 2, 'succeeded']]);
});

test("the README's time line reads a fan-out: branches wait from the fan-out step's end, the join from its slowest branch's", async () => {
  const id = await trigger(t.api, 'fanout', { branches: 3, delayMs: 60 });
  await waitForRun(t.p, id);
  const rows = await query<{ seq: number; branch: number | null; name: string; waited_ms: number; duration_ms: number }>(
    t.p.db,
    sql.raw(documentedSql('README.md', "A run's time line")),
  );
  assert.deepEqual(rows.map((r) => [r.seq, r.branch, r.name]), [[0, null, 'plan'], [1, 1, 'work'], [2, 2, 'work'], [3, 3, 'work'], [4, null, 'join']]);
  // Side by side: no branch waited for its siblings (each would wait ~60 ms more per sibling before it).
  for (const r of rows) assert.ok(r.waited_ms >= 0, `seq ${r.seq} waited ${r.waited_ms} ms`);
  const [plan, ...rest] = (await getRunWithSteps(t.p.db, id))?.steps ?? [];
  const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(Number(a) - b) <= 1;
  for (const b of rest.slice(0, 3)) {
    const waited = rows.find((r) => r.seq === b.seq)?.waited_ms;
    assert.ok(near(waited, b.startedAt.getTime() - (plan.finishedAt as Date).getTime()), `branch at seq ${b.seq} waited from the fan-out's end (${waited} ms)`);
  }
  const slowest = Math.max(...rest.slice(0, 3).map((b) => (b.finishedAt as Date).getTime()));
  assert.ok(near(rows[4].waited_ms, rest[3].startedAt.getTime() - slowest), `the join waited from its slowest branch (${rows[4].waited_ms} ms)`);
});

test('fan-outs in a row: a join that fans out again (an agent turn after turn) keeps seqs contiguous and each join sees its own branches', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 2, delayMs: 10, rounds: 3 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.branch, s.fanoutSeq]),
    [[0, 'plan', null, null], [1, 'work', 1, 0], [2, 'work', 2, 0], [3, 'join', null, null], [4, 'work', 1, 3], [5, 'work', 2, 3], [6, 'join', null, null], [7, 'work', 1, 6], [8, 'work', 2, 6], [9, 'join', null, null]],
  );
  const output = run.output as { branches: Outcome[]; notes: string[] };
  assert.deepEqual(output.branches.map((b) => b.seq), [7, 8], 'the last join sees only its own fan-out');
  assert.deepEqual(output.notes, ['planned', 'branch 1', 'branch 2', 'round 1 saw 1,2', 'branch 1', 'branch 2', 'round 2 saw 1,2', 'branch 1', 'branch 2']);
  const snaps = await query<{ seq: number }>(t.p.db, sql`select seq from checkpoints where run_id = ${id} order by seq`);
  assert.ok(snaps.some((c) => c.seq === 3), `a snapshot at a join that fanned out (seq 3) was read past: ${snaps.map((c) => c.seq).join(',')}`);
});
