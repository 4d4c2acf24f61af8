/**
 * The dispatcher's `execute`: instead of running a step in-process, it POSTs the
 * `{ run_id, seq }` envelope to the function's Knative Service (`POST /invoke`, the
 * same code path as the worker) and returns the outcome it answers. The worker loop
 * around it acks on a 2xx; anything else leaves the message pending, to be reclaimed.
 *
 * Revision pinning: a run whose first step already ran records that revision
 * (`runs.revision`); its later steps go to that revision's tagged route, so a deploy
 * never changes the code under a run in flight. A run not yet started goes to the
 * Service's main route (the newest revision), which then records itself.
 */
import type { StepOutcome } from '../../runtime/engine/execute-step.ts';
import { BatonError } from '../../runtime/errors.ts';
import { invokeHeaders } from '../../runtime/api/invoke-auth.ts';
import type { Platform } from '../../runtime/platform.ts';
import type { Delivery } from '../../runtime/queue/queue.ts';
import { runRevision } from '../../runtime/store/revision.ts';
import { startDispatchSpan } from '../../runtime/tracing.ts';
import { injectTraceHeaders } from '../../tools/lib/tracing.ts';
import { pinnedUrl } from './revision-tag.ts';

export interface DispatchOptions {
  /** The function's main route, e.g. `http://pr-review.baton.svc.cluster.local/invoke`. */
  url: string;
  /** Template of a revision's tagged route, with `{tag}`; without it, every step goes to `url`. */
  pinned?: string | undefined;
  /** Longest a step may take, plus the claim and commit around it. */
  timeoutMs: number;
  /** The function pods' credential; default BATON_INVOKE_TOKEN. */
  token?: string;
  fetch?: typeof fetch;
}

export function createDispatch(p: Platform, opts: DispatchOptions) {
  const post = opts.fetch ?? fetch;
  const token = opts.token ?? p.config.invokeToken;
  if (!token) throw new Error('BATON_INVOKE_TOKEN is not set: function pods refuse invocations without it');
  return async function dispatch(d: Delivery, shutdown: AbortSignal): Promise<StepOutcome> {
    let target = opts.url;
    if (opts.pinned) {
      const revision = await p.withDb(() => runRevision(p.db, d.message.runId));
      if (revision) target = pinnedUrl(opts.pinned, revision);
    }
    // A span for the request under the run's root; the step span in the function app is its child.
    const traced = startDispatchSpan(d.function, d.message.runId, d.message.seq, d.message.trace);
    const headers = { 'content-type': 'application/json', ...invokeHeaders(token) };
    let res: Response;
    try {
      res = await post(target, {
        method: 'POST',
        headers: traced ? injectTraceHeaders(headers, traced.ctx) : headers,
        body: JSON.stringify({ run_id: d.message.runId, seq: d.message.seq, ...(d.message.trace ? { trace: d.message.trace } : {}) }),
        signal: AbortSignal.any([shutdown, AbortSignal.timeout(opts.timeoutMs)]),
      });
      traced?.span.setAttribute('http.response.status_code', res.status);
    } catch (err) {
      traced?.span.recordException(err as Error);
      throw err;
    } finally {
      traced?.span.end();
    }
    const body = (await res.json().catch(() => null)) as { outcome?: StepOutcome; error?: { code?: string; message?: string } } | null;
    if (res.ok && body?.outcome) return body.outcome;
    if (res.status === 404 && body?.error?.code === 'function_not_found') {
      throw new BatonError('function_not_found', body.error.message ?? `${target} does not serve "${d.function}"`);
    }
    throw new Error(`${target} answered ${res.status}: ${body?.error?.message ?? 'no outcome'}`);
  };
}

/** The longest step timeout of a function, for the dispatcher's request timeout. */
export function longestStepMs(p: Platform, fn: string): number {
  const agent = p.functions.get(fn);
  if (!agent) throw new Error(`no function "${fn}"`);
  const timeouts = [...agent.steps.values()].map((s) => s.timeoutMs ?? agent.timeoutMs ?? p.config.stepTimeoutMs);
  return Math.max(...timeouts);
}
