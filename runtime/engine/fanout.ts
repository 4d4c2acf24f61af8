/**
 * The fan-out protocol (README "Fan-out and join"), the engine's side of
 * store/fanout.ts and store/branch.ts:
 *
 *   fan-out step commits → K branch rows queued, K messages published
 *   each branch: claim (its own row, its own lease) → execute → commit, fenced by its
 *     lease; the statement that finishes the last branch returns `last`
 *   last branch → publish the join (seq N+K+1), claimed like any step once
 *     `runs.branches` is 0; it sees the branches' outcomes in `ctx.branches`.
 *
 * A crash between any two of these is repaired the usual way: a redelivered message
 * whose claim matches nothing is settled by `settleFanout` (re-publish the branches no
 * lease holds) or, once the branches are done, by the run's own repair (publish the join).
 */
import type { StepKind } from '../../schema/tables.ts';
import type { Agent, DoneResult, ParallelResult } from '../define.ts';
import type { ErrorJson } from '../errors.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import { type BranchFailureResult, commitBranch, recordBranchFailure } from '../store/branch.ts';
import type { ClaimedStep as Claimed, Verdict } from '../store/claim.ts';
import { type StepUsage, resultWrite } from '../store/commit.ts';
import { commitFanout, diagnoseFanout, probeBranches } from '../store/fanout.ts';
import { applyPatch } from '../state.ts';
import { faultPoint } from './fault-points.ts';
import { snapshotDue } from './snapshot-policy.ts';

const COMMIT_BUDGET_MS = 60_000;

/** A claimed step and its run's trace (the `traceparent` its wake-ups carry on). */
type ClaimedStep = Claimed & { trace?: string | undefined };

/** Commits a step that returned parallel(...) and publishes its branches. False: fenced. */
export async function commitFanoutStep(
  p: Platform,
  agent: Agent,
  claimed: ClaimedStep,
  leaseOwner: string,
  result: ParallelResult,
  kind: StepKind,
  usage: StepUsage,
): Promise<boolean> {
  const due = snapshotDue(claimed.state, result.patch, claimed.seq, p.config.snapshotEvery);
  const seqs = await p.withDb(
    () =>
      commitFanout(p.db, {
        ...resultWrite(claimed, leaseOwner, kind, result.patch, usage),
        branches: result.branches,
        join: result.join,
        onBranchFailure: result.onBranchFailure,
        snapshot: due ? applyPatch(claimed.state, result.patch) : null,
      }),
    COMMIT_BUDGET_MS,
  );
  if (!seqs) return false;
  faultPoint('after-commit', claimed);
  // Hand on, K times. A crash part-way is repaired when this step's message comes back (settleFanout).
  for (const seq of seqs) await p.queue.publish(agent.name, { runId: claimed.runId, seq, trace: claimed.trace });
  p.log.debug({ runId: claimed.runId, seq: claimed.seq, branches: seqs.length, join: result.join }, 'fanned out');
  return true;
}

/** Commits a branch's done(); the last branch to finish publishes the join. False: fenced. */
export async function commitBranchStep(
  p: Platform,
  agent: Agent,
  claimed: ClaimedStep,
  leaseOwner: string,
  result: DoneResult,
  kind: StepKind,
  usage: StepUsage,
): Promise<boolean> {
  const finished = await p.withDb(
    () =>
      commitBranch(p.db, { ...resultWrite(claimed, leaseOwner, kind, result.patch, usage), output: result.output }),
    COMMIT_BUDGET_MS,
  );
  if (!finished) return false;
  faultPoint('after-commit', claimed);
  if (finished.last) await publishJoin(p, agent, claimed, finished.joinSeq);
  return true;
}

/** Records a branch's failed attempt: retry it, finish it as failed, or fail the run. Null: fenced. */
export async function failBranchStep(
  p: Platform,
  agent: Agent,
  claimed: ClaimedStep,
  leaseOwner: string,
  failure: { kind: StepKind | null; error: ErrorJson; usage: StepUsage; delayMs: number | null },
): Promise<BranchFailureResult | null> {
  const branch = claimed.branch?.index ?? 0;
  const recorded = await p.withDb(
    () =>
      recordBranchFailure(p.db, {
        runId: claimed.runId,
        seq: claimed.seq,
        attempt: claimed.attempt,
        leaseOwner,
        kind: failure.kind,
        error: failure.error,
        usage: failure.usage,
        retryInMs: failure.delayMs,
        runError: { ...failure.error, step: claimed.step, seq: claimed.seq, attempt: claimed.attempt, branch },
      }),
    COMMIT_BUDGET_MS,
  );
  if (!recorded) return null;
  if (failure.delayMs !== null) await p.queue.publish(agent.name, { runId: claimed.runId, seq: claimed.seq, trace: claimed.trace }, failure.delayMs);
  else if (recorded.last) await publishJoin(p, agent, claimed, recorded.joinSeq);
  return recorded;
}

async function publishJoin(p: Platform, agent: Agent, claimed: ClaimedStep, joinSeq: number): Promise<void> {
  // The last branch is committed and the join not yet published: a crash here is repaired
  // when this branch's message comes back (the run is idle past it: publish its next step).
  faultPoint('after-last-branch', claimed);
  await p.queue.publish(agent.name, { runId: claimed.runId, seq: joinSeq, trace: claimed.trace });
}

/** A message of a fanning run that nothing could claim: re-check it, drop it, or re-publish idle branches. */
export async function settleFanout(p: Platform, fn: string, msg: StepMessage): Promise<Verdict> {
  const branches = await p.withDb(() => probeBranches(p.db, msg.runId, msg.seq));
  const verdicts = diagnoseFanout(fn, msg.seq, branches);
  for (const v of verdicts) {
    if (v.action !== 'drop') await p.queue.publish(v.function, { runId: msg.runId, seq: v.seq, trace: msg.trace }, v.delayMs);
  }
  return verdicts[0] ?? { action: 'drop', reason: 'fanning out: nothing to do' };
}
