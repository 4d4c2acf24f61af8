/**
 * The step protocol (README "How a step runs"; DESIGN "The step protocol"):
 *
 *   claim + load (one statement) → execute the body under an AbortSignal, holding
 *   no database connection, with a heartbeat extending the lease → commit (one
 *   statement, fenced by the lease) → hand on (publish the next step).
 *
 * The caller acks the queue message after this returns, whatever the outcome; if
 * this throws (the database stayed down), the message stays pending and is
 * reclaimed. Both the worker (in-process) and a function's `POST /invoke` call this.
 *
 * A message whose run step does not match may name a branch of a fan-out: then the
 * branch is claimed on its own row, and its commit or failure goes through
 * engine/fanout.ts (README "Fan-out and join").
 *
 * Continue in process (the worker's mode): when a step hands on to a next step, its
 * commit also claims that step for this worker (store/continue.ts) and it runs here at
 * once, skipping the queue hop: one statement instead of a commit, an XADD, an XACK,
 * an XREADGROUP and a claim. The message that ran the first step stays pending in its
 * stream until the chain leaves this process (done, a wait, a retry, a fan-out, or the
 * worker draining), so the work in flight stays visible to KEDA, and a worker that dies
 * mid-chain is repaired like one that died between a commit and its hand-on.
 */
import { randomUUID } from 'node:crypto';
import type { Context } from '@opentelemetry/api';
import type { StepKind } from '../../schema/tables.ts';
import type { Agent, DoneResult, ResolvedStep, StepResult } from '../define.ts';
import { BatonError, coerceError } from '../errors.ts';
import { isTransientDbError } from '../db/sqlstate.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import { type ClaimedStep, type Verdict, claimStep, diagnose, probeRun } from '../store/claim.ts';
import { claimBranch, releaseBranch } from '../store/branch.ts';
import { type StepUsage, commitStep, recordFailure, resultWrite } from '../store/commit.ts';
import { resumeFromInbox } from '../store/signals.ts';
import { releaseLease } from '../store/lease.ts';
import { recordStepCall } from '../store/step-calls.ts';
import { commitAndClaimNext, commitDone, leaseHeld } from '../store/continue.ts';
import { openStepRows } from '../store/step-rows.ts';
import { runTraceContext } from '../store/runs.ts';
import { endStepSpan, inSpan, noteKind, startStepSpan } from '../tracing.ts';
import { tracingOn } from '../../tools/lib/tracing.ts';
import { type Patch, applyPatch } from '../state.ts';
import { backoffMs } from './backoff.ts';
import { createStepContext } from './context.ts';
import { checkResult } from './step-result.ts';
import { commitBranchStep, commitFanoutStep, failBranchStep, settleFanout } from './fanout.ts';
import { faultPoint } from './fault-points.ts';
import { keepLease } from './heartbeat.ts';
import { carrySnapshotLedger, snapshotDue as snapshotPolicy } from './snapshot-policy.ts';

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
}

/** A step committed and claimed its next step for this process: run that one now. */
interface Continued {
  status: 'continue';
  next: Claimed;
  leaseOwner: string;
}

/** A claimed step and its run's trace (the `traceparent` its wake-ups carry on). */
type Claimed = ClaimedStep & { trace?: string | undefined };

const COMMIT_BUDGET_MS = 60_000;
/**
 * A step tells the run's listeners it started (SSE `step.started`) when it makes its
 * outside call, or if it is still running this long after its claim; a quick step is
 * told once, with its commit: one PUBLISH per step instead of two. Events are read
 * from the rows, so nothing is missed either way.
 */
const STARTED_NOTICE_MS = 1000;
/**
 * A step claimed by the commit before it has no rows yet (store/continue.ts): they are
 * opened when it makes its outside call or once it has run this long, so a step in flight
 * shows as `running`; a quicker step gets them with its result.
 */
const OPEN_ROWS_MS = 20;

export async function executeStep(p: Platform, fn: string, msg: StepMessage, opts: ExecuteOptions): Promise<StepOutcome> {
  const agent = p.functions.get(fn);
  if (!agent) throw new BatonError('function_not_found', `this process does not serve function "${fn}"`);
  const leaseOwner = `${opts.worker}/${randomUUID().slice(0, 8)}`;
  const claimStarted = Date.now();
  const claim = {
    runId: msg.runId,
    function: fn,
    seq: msg.seq,
    leaseOwner,
    worker: opts.worker,
    leaseMs: p.config.leaseMs,
    maxClaims: p.config.maxClaims,
  };
  const claimed: Claimed | null =
    (await p.withDb(() => claimStep(p.db, { ...claim, revision: p.config.revision ?? null }))) ??
    // Not the run's next step: maybe a branch of its fan-out, leased on its own row.
    (await p.withDb(() => claimBranch(p.db, claim)));
  if (!claimed) {
    const verdict = await settleStale(p, fn, msg);
    p.log.debug({ runId: msg.runId, seq: msg.seq, verdict }, 'message not claimed');
    p.metrics.steps.inc({ function: fn, kind: 'none', outcome: 'skipped' });
    return { status: 'skipped', verdict };
  }
  // The run's trace: from the message, or (a delayed or repaired wake-up) from the run's row.
  claimed.trace =
    msg.trace ?? (tracingOn() ? ((await p.withDb(() => runTraceContext(p.db, claimed.runId), 2000).catch(() => null)) ?? undefined) : undefined);
  let current = claimed;
  let owner = leaseOwner;
  let startTime = claimStarted;
  let touched = claimStarted;
  for (;;) {
    const outcome = await traced(p, agent, current, owner, opts, startTime);
    if (outcome.status !== 'continue') return outcome;
    current = outcome.next;
    owner = outcome.leaseOwner;
    startTime = Date.now();
    // Each commit-and-claim sets a fresh lease, as a heartbeat does: keep the message's
    // stream entry as fresh (a chain of quick steps may never see a heartbeat tick).
    if (startTime - touched >= p.config.heartbeatMs) {
      touched = startTime;
      opts.onHeartbeat?.();
    }
  }
}

/** One step, in its span when tracing is on. */
async function traced(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  opts: ExecuteOptions,
  startTime: number,
): Promise<StepOutcome | Continued> {
  const span = startStepSpan({
    runId: claimed.runId,
    function: agent.name,
    step: claimed.step,
    seq: claimed.seq,
    attempt: claimed.attempt,
    branch: claimed.branch?.index,
    worker: opts.worker,
    runTrace: claimed.trace ?? null,
    parent: opts.traceParent,
    startTime,
  });
  if (!span) return afterClaim(p, agent, claimed, leaseOwner, opts);
  try {
    const outcome = await inSpan(span, () => afterClaim(p, agent, claimed, leaseOwner, opts));
    endStepSpan(span, outcome.status === 'continue' ? { status: 'committed' } : outcome);
    return outcome;
  } catch (err) {
    endStepSpan(span, null, err);
    throw err;
  }
}

async function afterClaim(p: Platform, agent: Agent, claimed: Claimed, leaseOwner: string, opts: ExecuteOptions): Promise<StepOutcome | Continued> {
  const fn = agent.name;
  if (claimed.crashLoop) {
    p.events.publish(claimed.runId, { type: 'changed' });
    // The claim itself failed the run: every earlier claim of this step died with its worker.
    p.log.error({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, error: claimed.crashLoop.message }, 'crash loop: run failed');
    p.metrics.steps.inc({ function: fn, kind: 'none', outcome: 'failed' });
    return { status: 'failed', error: claimed.crashLoop.message };
  }
  faultPoint('claimed', claimed);

  const step = agent.steps.get(claimed.step);
  if (!step) {
    const err = new BatonError('unknown_step', `function "${fn}" has no step "${claimed.step}"`);
    return fail(p, agent, claimed, leaseOwner, null, err, { model: null, inputTokens: null, outputTokens: null, costUsd: null });
  }
  return runClaimed(p, agent, step, claimed, leaseOwner, opts);
}

async function runClaimed(
  p: Platform,
  agent: Agent,
  step: ResolvedStep,
  claimed: Claimed,
  leaseOwner: string,
  opts: ExecuteOptions,
): Promise<StepOutcome | Continued> {
  const timeoutMs = step.timeoutMs ?? agent.timeoutMs ?? p.config.stepTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  // One controller per step, aborted by a cancel, a lost lease, the timeout or the process's
  // shutdown (AbortSignal.any and AbortSignal.timeout cost a weak reference and a timer each
  // per step, and a worker runs a thousand at once): the timer and the listener go in `finally`.
  const controller = new AbortController();
  const signal = controller.signal;
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`step timed out after ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const onShutdown = () => controller.abort(opts.shutdown?.reason);
  if (opts.shutdown?.aborted) onShutdown();
  else opts.shutdown?.addEventListener('abort', onShutdown, { once: true });
  p.inflight.add(claimed.runId, controller);
  let rowsOpened: Promise<unknown> | null = null;
  const openRows = (): Promise<unknown> => {
    const rows = claimed.rows;
    if (!rows || rowsOpened) return rowsOpened ?? Promise.resolve();
    const c = { runId: claimed.runId, seq: claimed.seq, attempt: claimed.attempt, step: claimed.step, leaseOwner, ...rows };
    // If this fails the commit still writes them; only the view of the step in flight is lost.
    rowsOpened = p.withDb(() => openStepRows(p.db, c), 5000).catch((err: Error) =>
      p.log.warn({ runId: claimed.runId, seq: claimed.seq, err: err.message }, 'could not open the step rows'),
    );
    return rowsOpened;
  };
  let announced = false;
  const announce = () => {
    clearTimeout(startedNotice);
    if (announced) return;
    announced = true;
    // After the rows are open: the listeners read the step from them.
    void openRows().then(() => p.events.publish(claimed.runId, { type: 'changed' }));
  };
  const slow = () => {
    if (claimed.rows && !rowsOpened) {
      void openRows();
      startedNotice = setTimeout(announce, STARTED_NOTICE_MS - OPEN_ROWS_MS);
    } else announce();
  };
  let startedNotice = setTimeout(slow, claimed.rows ? OPEN_ROWS_MS : STARTED_NOTICE_MS);
  const stopBeating = keepLease(
    p,
    claimed,
    leaseOwner,
    (lost) => {
      if (!controller.signal.aborted) controller.abort(lost);
    },
    opts.onHeartbeat,
  );
  try {
    const { ctx, recorder } = createStepContext(p, agent, claimed, signal, deadline, announce);
    const started = performance.now();
    let result: unknown;
    let thrown: unknown;
    try {
      result = await untilAborted(Promise.resolve().then(() => step.run(ctx)), signal);
    } catch (err) {
      thrown = err;
    } finally {
      p.inflight.remove(claimed.runId, controller);
      // The body is over: its commit writes the rows and tells the listeners (a commit
      // queued behind others under load is not a step still running).
      clearTimeout(startedNotice);
    }
    p.metrics.stepSeconds.observe({ function: agent.name, kind: recorder.kind }, (performance.now() - started) / 1000);
    if (recorder.call) {
      // Before the commit, so a step shown finished always shows its call; losing this row only costs the inspector.
      await recordStepCall(p.db, claimed, recorder.call).catch((err: Error) =>
        p.log.warn({ runId: claimed.runId, seq: claimed.seq, err: err.message }, 'could not record the step call'),
      );
    }

    if (signal.aborted) {
      const reason = signal.reason as unknown;
      if (reason instanceof BatonError && reason.code === 'cancelled') return count(p, agent, recorder.kind, { status: 'cancelled' });
      if (reason instanceof BatonError && reason.code === 'lease_lost') {
        p.log.warn({ runId: claimed.runId, seq: claimed.seq, step: claimed.step }, 'lease lost during the step: call aborted');
        return count(p, agent, recorder.kind, { status: 'fenced' });
      }
      if (opts.shutdown?.aborted && !timedOut) {
        // Released, another worker can claim the step at once; if this fails, the lease just expires.
        const release = claimed.branch
          ? () => releaseBranch(p.db, claimed.runId, claimed.seq, leaseOwner)
          : () => releaseLease(p.db, claimed.runId, leaseOwner);
        await p.withDb(release).catch(() => {});
        // Not caught: a step that could not be handed back must leave its message pending (unacked) for reclaim.
        await p.queue.publish(agent.name, { runId: claimed.runId, seq: claimed.seq, trace: claimed.trace });
        return count(p, agent, recorder.kind, { status: 'released' });
      }
      if (timedOut) thrown = new BatonError('step_timeout', `step "${claimed.step}" exceeded its timeout of ${timeoutMs} ms`);
    }
    if (thrown !== undefined) return await fail(p, agent, claimed, leaseOwner, recorder.calls ? recorder.kind : null, coerceError(thrown), recorder.usage);

    const checked = checkResult(agent, claimed.step, result, claimed.branch !== undefined);
    if (checked instanceof BatonError) return await fail(p, agent, claimed, leaseOwner, recorder.kind, checked, recorder.usage);
    return await commit(p, agent, claimed, leaseOwner, checked, recorder.kind, recorder.usage, opts);
  } finally {
    clearTimeout(startedNotice);
    clearTimeout(timeout);
    opts.shutdown?.removeEventListener('abort', onShutdown);
    // Only now: the lease must outlive a commit that is retried through a database blip.
    stopBeating();
  }
}

async function commit(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  result: StepResult,
  callKind: StepKind,
  usage: StepUsage,
  opts: ExecuteOptions,
): Promise<StepOutcome | Continued> {
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
  if (result.type === 'next' && opts.continueInProcess && !opts.draining?.aborted && agent.steps.has(result.step)) {
    return commitAndContinue(p, agent, claimed, leaseOwner, result.step, patch, kind, usage, snapshotDue, opts);
  }
  let committed: Awaited<ReturnType<typeof commitStep>>;
  try {
    const write = { ...resultWrite(claimed, leaseOwner, kind, patch, usage), snapshot: snapshotDue ? applyPatch(claimed.state, patch) : null };
    committed = await p.withDb(
      // A run's end needs none of a wait's inbox logic: it commits in the chains' batches.
      async () =>
        outcome.type === 'done'
          ? (await commitDone(p.db, { ...write, output: outcome.output })) === null
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
  if (!committed) return count(p, agent, kind, await fenced(p, claimed, 'commit'));
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
): Promise<StepOutcome | Continued> {
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
        }),
      COMMIT_BUDGET_MS,
    );
    // A retried statement whose first try committed (only its answer was lost) finds the fence moved on to us.
    claimedAt ??= await p.withDb(() => leaseHeld(p.db, claimed.runId, nextOwner, nextSeq), COMMIT_BUDGET_MS);
  } catch (err) {
    if (err instanceof BatonError || isTransientDbError(err)) throw err;
    return fail(p, agent, claimed, leaseOwner, kind, refusal(err), usage);
  }
  if (claimedAt === null) return count(p, agent, kind, await fenced(p, claimed, 'commit'));
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

async function fail(
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
async function settleStale(p: Platform, fn: string, msg: StepMessage): Promise<Verdict> {
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
  const verdict = diagnose(run, msg.seq, fn, { unrenewedMs: p.config.heartbeatMs });
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
async function fenced(p: Platform, claimed: Claimed, what: 'commit' | 'failure'): Promise<StepOutcome> {
  p.log.warn({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, what }, 'fence rejected the write (lease lost): result discarded');
  const verdict = await settleStale(p, claimed.function, claimed);
  return { status: 'fenced', verdict };
}

/** Why the database refused a result: drizzle wraps the server's message (the useful part) as the cause. */
function refusal(err: unknown): BatonError {
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return new BatonError('invalid_step_result', `the database refused the step's result: ${cause ?? (err as Error).message}`);
}

function count(p: Platform, agent: Agent, kind: string, outcome: StepOutcome): StepOutcome {
  p.metrics.steps.inc({ function: agent.name, kind, outcome: outcome.status });
  noteKind(kind);
  return outcome;
}

/** Resolves with the body's result, or rejects as soon as the signal aborts (a body may ignore it). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
