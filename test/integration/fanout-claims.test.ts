/**
 * A branch's claim state lives on its own row (store/branch.ts), driven here statement
 * by statement, with no worker running: a live branch lease keeps other claimers out
 * while a sibling is claimed beside it; a commit under a lost lease is fenced; a lease
 * handed back (graceful shutdown) is claimable at once and does not count as a crash;
 * a branch claimed BATON_MAX_CLAIMS times without a commit fails the run `crash_loop`,
 * stopping its siblings; and a message of the fanning run that nothing can claim
 * re-publishes the branches no lease holds (never the join).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { claimBranch, commitBranch, releaseBranch } from '../../runtime/store/branch.ts';
import { diagnoseFanout, probeBranches } from '../../runtime/store/fanout.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const usage = { model: null, inputTokens: null, outputTokens: null, costUsd: null };

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['fanout']) });
});
after(() => t.close());

/** A run whose fan-out step (seq 0) has committed: branches at seqs 1..n, join at n+1. */
async function fannedOut(n: number): Promise<string> {
  const id = await trigger(t.api, 'fanout', { branches: n, delayMs: 0 });
  const outcome = await executeStep(t.p, 'fanout', { runId: id, seq: 0 }, { worker: 'test' });
  assert.deepEqual(outcome, { status: 'committed', result: 'parallel', nextSeq: 1 });
  return id;
}

const claim = (runId: string, seq: number, owner: string, leaseMs = 60_000, maxClaims?: number) =>
  claimBranch(t.p.db, { runId, function: 'fanout', seq, leaseOwner: owner, worker: owner, leaseMs, ...(maxClaims ? { maxClaims } : {}) });

test('branch leases: siblings claimed side by side, a held branch refused, a lost lease fenced, a released one claimable at once', async () => {
  const id = await fannedOut(2);
  const b1 = await claim(id, 1, 'w1');
  const b2 = await claim(id, 2, 'w2');
  assert.ok(b1 && b2, 'both branches claimed at once');
  assert.deepEqual([b1.branch, b2.branch].map((b) => [b?.index, b?.of, b?.fanoutSeq, (b?.input as { i: number }).i]), [[1, 2, 0, 1], [2, 2, 0, 2]]);
  assert.deepEqual(b1.state, { planned: 2, notes: ['planned'] }, 'a branch runs on the state as of the fan-out');
  assert.equal(await claim(id, 1, 'w3'), null, 'a live lease keeps another claimer out');
  assert.equal(await claimBranch(t.p.db, { runId: id, function: 'other', seq: 1, leaseOwner: 'x', worker: 'x', leaseMs: 1000 }), null, 'never for another function');

  assert.equal(await commitBranch(t.p.db, { runId: id, seq: 1, attempt: 1, leaseOwner: 'w3', kind: 'compute', patch: {}, output: 1, usage }), null, 'fenced: not the lease holder');
  assert.ok(await releaseBranch(t.p.db, id, 1, 'w1'));
  const again = await claim(id, 1, 'w4');
  assert.ok(again, 'a released branch is claimable at once');
  const claims = (await getRunWithSteps(t.p.db, id))?.steps[1].claims;
  assert.equal(claims, 1, 'the handed-back claim did not count towards a crash loop');
  assert.equal(await commitBranch(t.p.db, { runId: id, seq: 1, attempt: 1, leaseOwner: 'w1', kind: 'compute', patch: {}, output: 1, usage }), null, 'the old holder is fenced out');
  assert.deepEqual(await commitBranch(t.p.db, { runId: id, seq: 1, attempt: 1, leaseOwner: 'w4', kind: 'compute', patch: {}, output: 1, usage }), { last: false, joinSeq: 3 });
  assert.deepEqual(await commitBranch(t.p.db, { runId: id, seq: 2, attempt: 1, leaseOwner: 'w2', kind: 'compute', patch: {}, output: 2, usage }), { last: true, joinSeq: 3 }, 'the last commit says so');
  const full = await getRunWithSteps(t.p.db, id);
  assert.deepEqual([full?.run.branches, full?.steps[1].worker, full?.steps[1].output], [0, 'w4', 1]);
});

test('a branch claimed maxClaims times without a commit fails the run crash_loop and stops its siblings', async () => {
  const id = await fannedOut(2);
  assert.ok(await claim(id, 2, 'sibling'));
  for (const owner of ['dead1', 'dead2']) {
    assert.ok(await claim(id, 1, owner, 1, 2), `${owner} claimed it`);
    await sleep(5); // its worker died: the lease runs out
  }
  const looped = await claim(id, 1, 'next', 60_000, 2);
  assert.ok(looped?.crashLoop, 'the third claim finds a crash loop');
  const full = await getRunWithSteps(t.p.db, id);
  assert.ok(full);
  const error = full.run.error as { code: string; branch: number; seq: number };
  assert.deepEqual([full.run.status, error.code, error.branch, error.seq], ['failed', 'crash_loop', 1, 1]);
  assert.deepEqual(full.steps.slice(1).map((s) => [s.seq, s.status, (s.error as { code: string }).code]), [[1, 'failed', 'crash_loop'], [2, 'failed', 'cancelled']]);
  assert.equal(await commitBranch(t.p.db, { runId: id, seq: 2, attempt: 1, leaseOwner: 'sibling', kind: 'compute', patch: {}, output: 2, usage }), null, "the sibling's commit is fenced out");
});

test('a message of a fanning run that nothing can claim re-publishes the idle branches, re-checks a held one, drops a finished one', async () => {
  const id = await fannedOut(3);
  assert.ok(await claim(id, 2, 'holder'));
  const branches = await probeBranches(t.p.db, id, 0);
  assert.deepEqual(diagnoseFanout('fanout', 0, branches).map((v) => [v.action, 'seq' in v ? v.seq : null]), [['republish', 1], ['republish', 3]], 'the fan-out step redelivered: idle branches again, never the join');
  assert.deepEqual(diagnoseFanout('fanout', 4, branches).map((v) => v.action), ['republish', 'republish'], 'an early join: the same');
  const held = diagnoseFanout('fanout', 2, await probeBranches(t.p.db, id, 2));
  assert.equal(held[0].action, 'recheck', 'a held branch is looked at again when its lease ends');
  assert.ok(await commitBranch(t.p.db, { runId: id, seq: 2, attempt: 1, leaseOwner: 'holder', kind: 'compute', patch: {}, output: 2, usage }));
  assert.deepEqual(diagnoseFanout('fanout', 2, await probeBranches(t.p.db, id, 2)).map((v) => v.action), ['drop'], 'a finished branch: a duplicate');

  // The worker path: the redelivered fan-out message re-publishes branches 1 and 3.
  const outcome = await executeStep(t.p, 'fanout', { runId: id, seq: 0 }, { worker: 'test' });
  assert.equal(outcome.status, 'skipped');
});
