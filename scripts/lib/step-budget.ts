/**
 * How long each part of the platform waits for a step, derived from the function's
 * longest step timeout, in one place: the renderer writes these numbers into the
 * Kubernetes objects and the dispatcher uses the same ones, so they cannot drift.
 *
 *   step ≤ stepS                          the step's own timeout (AbortSignal)
 *   Knative timeoutSeconds = stepS + 30   claim, load, commit and hand-on around it;
 *                                         it also covers the activator's wait for a pod
 *   dispatcher request     = that + 15    longer than Knative's, so a slow cold start is
 *                                         Knative's 504, not a dispatcher timeout
 *                                         followed by a duplicate dispatch
 *   drain on SIGTERM        the longest a pod can still be busy: a worker's step plus
 *                           its commit, a dispatcher's request
 *   terminationGrace        drain + 15: release leases, close connections, exit
 */

/** Claim, load, commit and hand-on around a step's own timeout. */
export const STEP_MARGIN_S = 30;
/** The dispatcher waits this much longer than Knative's request timeout. */
export const DISPATCH_MARGIN_S = 15;
/** After the drain: release what is left, close connections, exit. */
export const EXIT_MARGIN_S = 15;

export interface StepBudget {
  stepS: number;
  knativeTimeoutS: number;
  dispatchTimeoutS: number;
  /** Drain of a pod that runs steps itself (worker, function). */
  workerDrainS: number;
  /** Drain of a dispatcher: its requests may take dispatchTimeoutS. */
  dispatcherDrainS: number;
}

export function stepBudget(longestStepMs: number): StepBudget {
  const stepS = Math.ceil(longestStepMs / 1000);
  const knativeTimeoutS = stepS + STEP_MARGIN_S;
  const dispatchTimeoutS = knativeTimeoutS + DISPATCH_MARGIN_S;
  return { stepS, knativeTimeoutS, dispatchTimeoutS, workerDrainS: stepS + STEP_MARGIN_S, dispatcherDrainS: dispatchTimeoutS };
}
