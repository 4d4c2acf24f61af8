/**
 * When a step does not commit: its failure record (a retry after a backoff, or the run
 * failed), and a message or a write the run has moved past (`settleStale`, `fenced`).
 */
import type { StepKind } from '../../schema/tables.ts';
import type { Agent } from '../define.ts';
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import { type Verdict, diagnose, probeRun } from '../store/claim.ts';
import { type StepUsage, recordFailure } from '../store/commit.ts';
import { resumeFromInbox } from '../store/signals.ts';
import { backoffMs } from './backoff.ts';
import { failBranchStep, settleFanout } from './fanout.ts';
import { COMMIT_BUDGET_MS, type Claimed, type StepOutcome, count } from './step-outcome.ts';

/** Records the failed attempt: a retry after a backoff while attempts remain, else the run fails. */
export async function fail(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  kind: StepKind | null,
  err: BatonError,
  usage: StepUsage,
): Promise<StepOutcome> {
  const step = agent.steps.get(claimed.step);
  const maxAttempts = step?.maxAttempts ?? agent.maxAttempts ?? p.config.maxAttempts;
  // Attempts since the last POST /retry, which grants maxAttempts more.
  const attempts = claimed.attempt - claimed.attemptBase;
  const retry = err.retryable && attempts < maxAttempts;
  // A provider's Retry-After wins over the jittered backoff: retrying sooner only buys another 429.
  const delayMs = retry ? Math.max(1, err.retryAfterMs ?? backoffMs(attempts, p.config.retryBaseMs, p.config.retryMaxMs)) : null;
  const error = { ...err.toJSON(), attempt: claimed.attempt };
  if (claimed.branch) {
    const branch = await failBranchStep(p, agent, claimed, leaseOwner, { kind, error, usage, delayMs });
    if (!branch) return count(p, agent, kind ?? 'compute', await fenced(p, claimed, 'failure'));
    p.log.warn({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, branch: claimed.branch.index, attempt: claimed.attempt, err: err.message, retry }, 'branch failed');
    p.events.publish(claimed.runId, { type: 'changed' });
    return count(p, agent, kind ?? 'compute', delayMs !== null ? { status: 'retrying', delayMs, error: err.message } : { status: 'failed', error: err.message });
  }
  const recorded = await p.withDb(
    () =>
      recordFailure(p.db, {
        runId: claimed.runId,
        seq: claimed.seq,
        step: claimed.step,
        worker: claimed.rows?.worker ?? null,
        claimedAt: claimed.rows?.claimedAt ?? null,
        attempt: claimed.attempt,
        leaseOwner,
        kind,
        error,
        usage,
        retryInMs: delayMs,
        runError: { ...err.toJSON(), step: claimed.step, seq: claimed.seq, attempt: claimed.attempt },
      }),
    COMMIT_BUDGET_MS,
  );
  if (!recorded) return count(p, agent, kind ?? 'compute', await fenced(p, claimed, 'failure'));
  p.log.warn({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, attempt: claimed.attempt, err: err.message, retry }, 'step failed');
  if (delayMs !== null) await p.queue.publish(agent.name, { runId: claimed.runId, seq: claimed.seq, trace: claimed.trace }, delayMs);
  p.events.publish(claimed.runId, { type: 'changed' });
  return count(
    p,
    agent,
    kind ?? 'compute',
    delayMs !== null ? { status: 'retrying', delayMs, error: err.message } : { status: 'failed', error: err.message },
  );
}

/**
 * A message that cannot (or can no longer) run its step: probe the run and do what
 * `diagnose` says (drop it, re-publish the run's current step, or look again later).
 */
export async function settleStale(p: Platform, fn: string, msg: StepMessage): Promise<Verdict> {
  const run = await p.withDb(() => probeRun(p.db, msg.runId));
  if (run?.status === 'waiting' && run.inbox > 0 && run.function === fn) {
    // Parked with signals in its inbox: a worker that died between a wait's commit and its
    // look at the inbox (see commit) can leave the one it waits for there. Take it now.
    const w = await p.withDb(() => resumeFromInbox(p.db, msg.runId));
    if (w) {
      await p.queue.publish(w.function, { runId: w.id, seq: w.next_seq, trace: msg.trace });
      return { action: 'republish', reason: 'repair: the waiting run took its signal from the inbox', function: w.function, seq: w.next_seq, delayMs: 0 };
    }
  }
  // Fanning out: the join is not due; what matters is that every branch is queued or in flight.
  if (run && run.branches > 0 && run.status === 'running' && run.function === fn) return settleFanout(p, fn, msg);
  // A live holder renews its lease every beat, so it always has more than a lease less a beat left.
  // Less means a beat went missing: its holder may have died after renewing and before touching
  // this message (the touch follows the renewal), and only a look after the lease ends repairs the run.
  const verdict = diagnose(run, msg.seq, fn, { unrenewedMs: p.config.leaseMs - p.config.heartbeatMs });
  if (verdict.action !== 'drop') await p.queue.publish(verdict.function, { runId: msg.runId, seq: verdict.seq, trace: msg.trace }, verdict.delayMs);
  return verdict;
}

/**
 * The fence rejected our commit or failure record. Usually another worker owns the
 * step now (this one was paused or partitioned past its lease) and the result is
 * simply discarded. But a rejection is also what a retried statement sees when its
 * first try committed and only the answer was lost (the connection dropped during a
 * database restart): then nobody has published the next step. Settling the message
 * like an unclaimable one covers both: the repair re-publishes the run's current
 * step if the run is idle past this seq, and drops or re-checks it otherwise.
 */
export async function fenced(p: Platform, claimed: Claimed, what: 'commit' | 'failure'): Promise<StepOutcome> {
  p.log.warn({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, what }, 'fence rejected the write (lease lost): result discarded');
  const verdict = await settleStale(p, claimed.function, claimed);
  return { status: 'fenced', verdict };
}

/** Why the database refused a result: drizzle wraps the server's message (the useful part) as the cause. */
export function refusal(err: unknown): BatonError {
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return new BatonError('invalid_step_result', `the database refused the step's result: ${cause ?? (err as Error).message}`);
}
