/**
 * What running a step came to, as the worker, `POST /invoke` and the tests see it, and the
 * options they run it with (engine/execute-step.ts); the commit and failure paths
 * (step-commit.ts, step-failure.ts) answer in these terms.
 */
import type { Context } from '@opentelemetry/api';
import type { Agent, StepResult } from '../define.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import type { ClaimedStep, Verdict } from '../store/claim.ts';
import { noteKind } from '../tracing.ts';

export type StepOutcome =
  | { status: 'committed'; result: StepResult['type']; nextSeq: number }
  | { status: 'retrying'; delayMs: number; error: string }
  | { status: 'failed'; error: string }
  /** Not claimed: a duplicate, stale or early message (see Verdict). */
  | { status: 'skipped'; verdict: Verdict }
  /** The lease was lost while the step ran: its result was discarded. */
  | { status: 'fenced'; verdict?: Verdict }
  | { status: 'cancelled' }
  /** The process is shutting down: lease released, step re-published for another worker. */
  | { status: 'released' };

export interface ExecuteOptions {
  worker: string;
  /** Aborted when this process must stop (after its grace period). */
  shutdown?: AbortSignal;
  /**
   * Called after each heartbeat that extended the lease: the worker touches the step's
   * stream entry then, so the entry looks idle for a lease only once the lease in
   * PostgreSQL has run out too (a reclaim that came earlier would find it still held).
   */
  onHeartbeat?: () => void;
  /**
   * Publishes the next step in the same round trip as the ack of the message that ran
   * this one (the worker's MULTI XADD + XACK); default: publish only, the caller acks.
   */
  handOn?: (next: StepMessage) => Promise<void>;
  /** The step span's parent when closer than the run's root (POST /invoke: the dispatcher's span). */
  traceParent?: Context | null;
  /** Run a next step here at once, claimed by the commit (the worker; not POST /invoke, one step per request). */
  continueInProcess?: boolean;
  /** Aborted when this process stops taking work: from then on steps hand on through the queue. */
  draining?: AbortSignal;
  /**
   * The message is delivered for the first time (read from the stream, not reclaimed from a
   * dead consumer): a fresh run's first step may then start before its claim (execute-step.ts).
   * A reclaimed message is always claimed first, so a step that kills its worker is counted
   * towards a crash loop.
   */
  firstDelivery?: boolean;
}

/** A step committed and claimed its next step for this process: run that one now. */
export interface Continued {
  status: 'continue';
  next: Claimed;
  leaseOwner: string;
}

/**
 * A claimed step and its run's trace (the `traceparent` its wake-ups carry on). `unclaimed`:
 * a fresh run's first step read without a claim (store/first-step.ts), until its commit or
 * its claim; the worker that runs it and when it started (performance.now()).
 */
export type Claimed = ClaimedStep & { trace?: string | undefined; unclaimed?: { worker: string; since: number } | null };

/** A first step that ran unclaimed lost its chance (its claim or its commit found the run changed): claim it the usual way. */
export interface Abandoned {
  status: 'abandoned';
}
export const ABANDONED: Abandoned = { status: 'abandoned' };

/** How long a commit or failure record may retry through a database outage. */
export const COMMIT_BUDGET_MS = 60_000;

/** Counts the outcome (metrics, the step span's kind) and returns it. */
export function count(p: Platform, agent: Agent, kind: string, outcome: StepOutcome): StepOutcome {
  p.metrics.steps.inc({ function: agent.name, kind, outcome: outcome.status });
  noteKind(kind);
  return outcome;
}
