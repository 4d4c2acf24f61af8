/**
 * A step's result, committed (README "How a step runs"): a fan-out or a branch through
 * engine/fanout.ts; a next step this worker runs at once through the commit that also
 * claims it (store/continue.ts); otherwise one fenced commit, then the hand-on.
 */
import { randomUUID } from 'node:crypto';
import type { StepKind } from '../../schema/tables.ts';
import type { Agent, DoneResult, StepResult } from '../define.ts';
import { BatonError } from '../errors.ts';
import { isTransientDbError } from '../db/sqlstate.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import { type StepUsage, commitStep, resultWrite } from '../store/commit.ts';
import { commitAndClaimNext, commitDone, leaseHeld } from '../store/continue.ts';
import { resumeFromInbox } from '../store/signals.ts';
import { type Patch, applyPatch } from '../state.ts';
import { commitBranchStep, commitFanoutStep } from './fanout.ts';
import { faultPoint } from './fault-points.ts';
import { carrySnapshotLedger, snapshotDue as snapshotPolicy } from './snapshot-policy.ts';
import { fail, fenced, refusal } from './step-failure.ts';
import { ABANDONED, type Abandoned, COMMIT_BUDGET_MS, type Claimed, type Continued, type ExecuteOptions, type StepOutcome, count } from './step-outcome.ts';

/**
 * Whether this result commits through the chains' batched statement (store/continue.ts): a
 * next step run here at once, or the run's end. Only these may commit a step that ran
 * unclaimed (engine/execute-step.ts); any other result is claimed first.
 */
export function commitsInBatch(agent: Agent, claimed: Claimed, result: StepResult, opts: ExecuteOptions): boolean {
  if (claimed.branch) return false;
  if (result.type === 'done') return true;
  return result.type === 'next' && opts.continueInProcess === true && !opts.draining?.aborted && agent.steps.has(result.step);
}

/** What the batched statement needs to commit a step that ran unclaimed (null for a claimed one). */
function unclaimedWrite(p: Platform, claimed: Claimed) {
  return claimed.unclaimed ? { revision: p.config.revision ?? null, elapsedMs: performance.now() - claimed.unclaimed.since } : null;
}

export async function commit(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  result: StepResult,
  callKind: StepKind,
  usage: StepUsage,
  opts: ExecuteOptions,
): Promise<StepOutcome | Continued | Abandoned> {
  const kindOf: StepKind = callKind !== 'compute' ? callKind : result.type === 'wait' ? 'wait' : 'compute';
  if (claimed.branch || result.type === 'parallel') {
    faultPoint('before-commit', claimed);
    let ok: boolean;
    try {
      ok =
        result.type === 'parallel'
          ? await commitFanoutStep(p, agent, claimed, leaseOwner, result, kindOf, usage)
          : await commitBranchStep(p, agent, claimed, leaseOwner, result as DoneResult, kindOf, usage);
    } catch (err) {
      if (err instanceof BatonError || isTransientDbError(err)) throw err;
      const refused = refusal(err);
      return fail(p, agent, claimed, leaseOwner, kindOf, refused, usage);
    }
    if (!ok) return count(p, agent, kindOf, await fenced(p, claimed, 'commit'));
    p.events.publish(claimed.runId, { type: 'changed' });
    return count(p, agent, kindOf, { status: 'committed', result: result.type, nextSeq: claimed.seq + 1 });
  }
  const patch = result.patch;
  // With BATON_SNAPSHOT_EVERY set, a run's end is snapshotted too, as that setting always did.
  const snapshotDue =
    snapshotPolicy(claimed.state, patch, claimed.seq, p.config.snapshotEvery) || (result.type === 'done' && p.config.snapshotEvery !== undefined);
  const kind = kindOf;
  const outcome =
    result.type === 'next'
      ? { type: 'next' as const, step: result.step }
      : result.type === 'done'
        ? { type: 'done' as const, output: result.output }
        : {
            type: 'wait' as const,
            step: result.step ?? claimed.step,
            signal: result.signal,
            timeoutMs: result.timeoutMs ?? null,
            request: result.request,
          };
  faultPoint('before-commit', claimed);
  if (result.type === 'next' && commitsInBatch(agent, claimed, result, opts)) {
    return commitAndContinue(p, agent, claimed, leaseOwner, result.step, patch, kind, usage, snapshotDue, opts);
  }
  let committed: Awaited<ReturnType<typeof commitStep>>;
  try {
    const write = { ...resultWrite(claimed, leaseOwner, kind, patch, usage), snapshot: snapshotDue ? applyPatch(claimed.state, patch) : null };
    committed = await p.withDb(
      // A run's end needs none of a wait's inbox logic: it commits in the chains' batches.
      async () =>
        outcome.type === 'done'
          ? (await commitDone(p.db, { ...write, output: outcome.output, unclaimed: unclaimedWrite(p, claimed) })) === null
            ? null
            : { wakeInMs: null, resumed: false, recheckInbox: false }
          : commitStep(p.db, { ...write, outcome }),
      COMMIT_BUDGET_MS,
    );
  } catch (err) {
    // The database refused this result itself (not an outage): running the step again
    // would only be refused again, so the attempt fails with the database's reason.
    if (err instanceof BatonError || isTransientDbError(err)) throw err;
    const refused = refusal(err);
    return fail(p, agent, claimed, leaseOwner, kind, refused, usage);
  }
  if (!committed) return claimed.unclaimed ? ABANDONED : count(p, agent, kind, await fenced(p, claimed, 'commit'));
  faultPoint('after-commit', claimed);
  // Hand on. A crash before this line is repaired by the claim of a duplicate or by the sweeper.
  const nextSeq = claimed.seq + 1;
  const publishNext = opts.handOn ?? ((next: StepMessage) => p.queue.publish(agent.name, next));
  if (result.type === 'next' || committed.resumed) await publishNext({ runId: claimed.runId, seq: nextSeq, trace: claimed.trace });
  else if (result.type === 'wait') {
    // A signal buffered while this commit queued on the run's lock: take it now (rare; see store/commit.ts).
    const resumed = committed.recheckInbox ? await p.withDb(() => resumeFromInbox(p.db, claimed.runId), COMMIT_BUDGET_MS) : null;
    if (resumed) await p.queue.publish(agent.name, { runId: claimed.runId, seq: nextSeq, trace: claimed.trace });
    else if (committed.wakeInMs !== null) await p.queue.publish(agent.name, { runId: claimed.runId, seq: nextSeq, trace: claimed.trace }, Math.max(1, committed.wakeInMs));
  }
  p.events.publish(claimed.runId, { type: 'changed' });
  return count(p, agent, kind, { status: 'committed', result: result.type, nextSeq });
}

/** Commits the step and claims the next one for this process (store/continue.ts). */
async function commitAndContinue(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  nextStep: string,
  patch: Patch,
  kind: StepKind,
  usage: StepUsage,
  snapshotDue: boolean,
  opts: ExecuteOptions,
): Promise<StepOutcome | Continued | Abandoned> {
  const nextOwner = `${opts.worker}/${randomUUID().slice(0, 8)}`;
  const nextSeq = claimed.seq + 1;
  const state = applyPatch(claimed.state, patch);
  carrySnapshotLedger(claimed.state, state);
  let claimedAt: string | null;
  try {
    claimedAt = await p.withDb(
      () =>
        commitAndClaimNext(p.db, {
          ...resultWrite(claimed, leaseOwner, kind, patch, usage),
          nextStep,
          snapshot: snapshotDue ? state : null,
          next: { leaseOwner: nextOwner, worker: opts.worker, leaseMs: p.config.leaseMs },
          unclaimed: unclaimedWrite(p, claimed),
        }),
      COMMIT_BUDGET_MS,
    );
    // A retried statement whose first try committed (only its answer was lost) finds the fence moved on to us.
    claimedAt ??= await p.withDb(() => leaseHeld(p.db, claimed.runId, nextOwner, nextSeq), COMMIT_BUDGET_MS);
  } catch (err) {
    if (err instanceof BatonError || isTransientDbError(err)) throw err;
    return fail(p, agent, claimed, leaseOwner, kind, refusal(err), usage);
  }
  if (claimedAt === null) return claimed.unclaimed ? ABANDONED : count(p, agent, kind, await fenced(p, claimed, 'commit'));
  faultPoint('after-commit', claimed);
  p.events.publish(claimed.runId, { type: 'changed' });
  count(p, agent, kind, { status: 'committed', result: 'next', nextSeq });
  const next: Claimed = {
    runId: claimed.runId,
    function: claimed.function,
    tenant: claimed.tenant,
    input: claimed.input,
    step: nextStep,
    seq: nextSeq,
    attempt: 1,
    attemptBase: 0,
    revision: claimed.revision,
    state,
    signal: undefined,
    crashLoop: null,
    branch: undefined,
    branches: undefined,
    rows: { worker: opts.worker, claimedAt },
    trace: claimed.trace,
  };
  return { status: 'continue', next, leaseOwner: nextOwner };
}
