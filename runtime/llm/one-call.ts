/**
 * The one-call rule for `ctx.llm`: one step makes exactly one model request, so
 * every model call and every tool call sits behind its own checkpoint. Refused here,
 * before any request is sent, with a non-retryable `one_call_per_step`:
 *   - tools that carry `execute` (the SDK would run them inside this step; pass
 *     definitions without `execute`, read `toolCalls` back and run each call as its
 *     own step);
 *   - multi-step options: `stopWhen` and `prepareStep` (AI SDK 7), `maxSteps` (earlier
 *     versions), `experimental_steering` (adds messages between steps);
 *   - the SDK's own retries (`maxRetries`, `streamRetries` other than 0): each retry
 *     is another billed request, and the engine already retries the step.
 */
import { BatonError } from '../errors.ts';

const MULTI_STEP_OPTIONS = ['stopWhen', 'prepareStep', 'maxSteps', 'experimental_prepareStep', 'experimental_steering'] as const;
const RETRY_OPTIONS = ['maxRetries', 'streamRetries'] as const;

export function refuseMoreThanOneCall(step: string, options: object): void {
  const o = options as Record<string, unknown>;
  const refuse = (what: string) =>
    new BatonError('one_call_per_step', `step "${step}": ctx.llm ${what}; a step makes one model call (give each call its own step)`);
  const tools = o.tools && typeof o.tools === 'object' ? Object.entries(o.tools as Record<string, unknown>) : [];
  const executing = tools.filter(([, t]) => typeof (t as { execute?: unknown } | null)?.execute === 'function').map(([name]) => name);
  if (executing.length > 0) {
    throw refuse(
      `refuses tools that carry execute (${executing.join(', ')}): pass their definitions without execute and run the model's tool calls in steps of their own`,
    );
  }
  const multi = MULTI_STEP_OPTIONS.filter((k) => o[k] !== undefined);
  if (multi.length > 0) throw refuse(`refuses multi-step options (${multi.join(', ')})`);
  const retries = RETRY_OPTIONS.filter((k) => o[k] !== undefined && o[k] !== 0);
  if (retries.length > 0) throw refuse(`refuses the SDK's own retries (${retries.join(', ')}): the engine retries the step (maxAttempts)`);
}
