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
 *
 * This file claims and runs the body; the result is committed by step-commit.ts, a
 * failure recorded by step-failure.ts, and step-outcome.ts says what came of it.
 */
import { randomUUID } from 'node:crypto';
import type { Agent, ResolvedStep } from '../define.ts';
import { BatonError, coerceError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import type { StepMessage } from '../queue/queue.ts';
import { type ClaimInput, claimStep } from '../store/claim.ts';
import { readFirstStep } from '../store/first-step.ts';
import { claimBranch, releaseBranch } from '../store/branch.ts';
import { releaseLease } from '../store/lease.ts';
import { recordStepCall } from '../store/step-calls.ts';
import { openStepRows } from '../store/step-rows.ts';
import { runTraceContext } from '../store/runs.ts';
import { endStepSpan, inSpan, startStepSpan } from '../tracing.ts';
import { tracingOn } from '../../tools/lib/tracing.ts';
import { followAbort } from './abort-fanout.ts';
import { createStepContext } from './context.ts';
import { checkResult } from './step-result.ts';
import { faultPoint } from './fault-points.ts';
import { keepLease } from './heartbeat.ts';
import { commit, commitsInBatch } from './step-commit.ts';
import { fail, settleStale } from './step-failure.ts';
import { ABANDONED, type Abandoned, type Claimed, type Continued, type ExecuteOptions, type StepOutcome, count } from './step-outcome.ts';

export type { ExecuteOptions, StepOutcome } from './step-outcome.ts';

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
  const claim = claimInput(p, fn, msg, leaseOwner, opts.worker);
  // A quick first step: a fresh run's first wake-up, delivered for the first time, runs on a read
  // and is claimed by its commit (store/first-step.ts); the worker continues it in process.
  const quickStart = opts.firstDelivery && opts.continueInProcess && msg.seq === 0 && !claimsFirst.has(agent);
  const unclaimed = quickStart ? await p.withDb(() => readFirstStep(p.db, claim)) : null;
  const claimed: Claimed | null = unclaimed && agent.steps.has(unclaimed.step)
    ? { ...unclaimed, unclaimed: { worker: opts.worker, since: performance.now() } }
    : ((await p.withDb(() => claimStep(p.db, claim))) ??
      // Not the run's next step: maybe a branch of its fan-out, leased on its own row.
      (await p.withDb(() => claimBranch(p.db, claim))));
  if (!claimed) return skipped(p, fn, msg);
  // The run's trace: from the message, or (a delayed or repaired wake-up) from the run's row.
  const trace =
    msg.trace ?? (tracingOn() ? ((await p.withDb(() => runTraceContext(p.db, claimed.runId), 2000).catch(() => null)) ?? undefined) : undefined);
  claimed.trace = trace;
  let current = claimed;
  let owner = leaseOwner;
  let startTime = claimStarted;
  let touched = claimStarted;
  for (;;) {
    const outcome = await traced(p, agent, current, owner, opts, startTime);
    if (outcome.status === 'abandoned') {
      // The unclaimed first step met a changed run: claim it the usual way (the same owner, so a
      // claim this step already made is its own), and run it again from its claim.
      const again = await p.withDb(() => claimStep(p.db, claim));
      if (!again) return skipped(p, fn, msg);
      current = { ...again, trace };
      continue;
    }
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

/**
 * Functions whose first step had to be claimed before its end here (it made an outside call,
 * ran a while or ended otherwise than by a hand-on or the run's end): their runs' first steps are
 * claimed at once from then on, since a read before the claim would only add a round trip.
 */
const claimsFirst = new WeakSet<Agent>();

/** The claim of the message's step by `leaseOwner`, with this process's limits. */
function claimInput(p: Platform, fn: string, msg: StepMessage, leaseOwner: string, worker: string): ClaimInput {
  const { leaseMs, maxClaims, revision } = p.config;
  return { runId: msg.runId, function: fn, seq: msg.seq, leaseOwner, worker, leaseMs, maxClaims, revision: revision ?? null };
}

/** A message whose step this process may not claim (a duplicate, stale or early one): settled, and counted. */
async function skipped(p: Platform, fn: string, msg: StepMessage): Promise<StepOutcome> {
  const verdict = await settleStale(p, fn, msg);
  p.log.debug({ runId: msg.runId, seq: msg.seq, verdict }, 'message not claimed');
  p.metrics.steps.inc({ function: fn, kind: 'none', outcome: 'skipped' });
  return { status: 'skipped', verdict };
}

/** One step, in its span when tracing is on. */
async function traced(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  opts: ExecuteOptions,
  startTime: number,
): Promise<StepOutcome | Continued | Abandoned> {
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

async function afterClaim(
  p: Platform,
  agent: Agent,
  claimed: Claimed,
  leaseOwner: string,
  opts: ExecuteOptions,
): Promise<StepOutcome | Continued | Abandoned> {
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
): Promise<StepOutcome | Continued | Abandoned> {
  const timeoutMs = step.timeoutMs ?? agent.timeoutMs ?? p.config.stepTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  // One controller per step, aborted by a cancel, a lost lease, the timeout or the process's
  // shutdown (AbortSignal.any and AbortSignal.timeout cost a weak reference and a timer each
  // per step, and a worker runs a thousand at once): the timer and the listener go in `finally`.
  const controller = new AbortController();
  const signal = controller.signal;
  let timedOut = false;
  const onTimeout = () => {
    timedOut = true;
    controller.abort(new DOMException(`step timed out after ${timeoutMs} ms`, 'TimeoutError'));
  };
  let timeout = setTimeout(onTimeout, timeoutMs);
  // Through one listener for all the worker's steps (engine/abort-fanout.ts).
  const unfollowShutdown = opts.shutdown ? followAbort(opts.shutdown, () => controller.abort(opts.shutdown?.reason)) : () => {};
  p.inflight.add(claimed.runId, controller);
  const beat = () =>
    keepLease(
      p,
      claimed,
      leaseOwner,
      (lost) => {
        if (!controller.signal.aborted) controller.abort(lost);
      },
      opts.onHeartbeat,
    );
  // A step that runs unclaimed is leased (and beats) only from its claim.
  let stopBeating = claimed.unclaimed ? () => {} : beat();
  // An unclaimed step is claimed before its outside call, once it has run a while, or before
  // a result other than a hand-on in process or the run's end; the claim opens its rows.
  let claiming: Promise<boolean> | null = null;
  let abandoned = false;
  const claimNow = (): Promise<boolean> =>
    (claiming ??= (async () => {
      const c = claimInput(p, agent.name, claimed, leaseOwner, opts.worker);
      // The step's timeout counts its own time, not its claim's (as when claimed before it ran): paused meanwhile.
      clearTimeout(timeout);
      const left = deadline - Date.now();
      const got = await p.withDb(() => claimStep(p.db, c), 5000).catch(() => null);
      if (!got || got.crashLoop || got.step !== claimed.step) {
        abandoned = true;
        controller.abort(new BatonError('lease_lost', 'the run changed before this step was claimed'));
        return false;
      }
      claimed.unclaimed = null;
      claimsFirst.add(agent);
      stopBeating = beat();
      if (!signal.aborted) timeout = setTimeout(onTimeout, Math.max(0, left));
      return true;
    })());
  let rowsOpened: Promise<unknown> | null = null;
  const openRows = (): Promise<unknown> => {
    if (claimed.unclaimed) return (rowsOpened ??= claimNow());
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
  const rowsLater = claimed.rows !== null || Boolean(claimed.unclaimed);
  const slow = () => {
    if (rowsLater && !rowsOpened) {
      void openRows();
      startedNotice = setTimeout(announce, STARTED_NOTICE_MS - OPEN_ROWS_MS);
    } else announce();
  };
  let startedNotice = setTimeout(slow, rowsLater ? OPEN_ROWS_MS : STARTED_NOTICE_MS);
  // Just before the outside call: an unclaimed step's call waits for its claim, and never goes out without it.
  const beforeCall = async () => {
    announce();
    if (claiming && !(await claiming)) throw signal.reason;
  };
  try {
    const { ctx, recorder } = createStepContext(p, agent, claimed, signal, deadline, beforeCall);
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

    // A claim under way (the step ran a while) lands before its result goes anywhere.
    if ((claiming && !(await claiming)) || abandoned) return ABANDONED;
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
    const checked = thrown === undefined ? checkResult(agent, claimed.step, result, claimed.branch !== undefined) : undefined;
    // Only a hand-on in process or the run's end commits an unclaimed step; anything else is claimed first.
    const inBatch = checked !== undefined && !(checked instanceof BatonError) && commitsInBatch(agent, claimed, checked, opts);
    if (claimed.unclaimed && !inBatch && !(await claimNow())) return ABANDONED;
    if (checked === undefined) return await fail(p, agent, claimed, leaseOwner, recorder.calls ? recorder.kind : null, coerceError(thrown), recorder.usage);
    if (checked instanceof BatonError) return await fail(p, agent, claimed, leaseOwner, recorder.kind, checked, recorder.usage);
    return await commit(p, agent, claimed, leaseOwner, checked, recorder.kind, recorder.usage, opts);
  } finally {
    clearTimeout(startedNotice);
    clearTimeout(timeout);
    unfollowShutdown();
    // Only now: the lease must outlive a commit that is retried through a database blip.
    stopBeating();
  }
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
