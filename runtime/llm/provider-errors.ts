/**
 * What a failed model call means for the step: the engine is the only retry layer
 * (every call runs with the AI SDK's `maxRetries: 0`), so the provider's answer is
 * mapped here to a retryable or a final `llm_error`.
 *
 *   429, 408, 409, 5xx, no answer at all   → retryable (rate limit, overload, network)
 *   400, 401, 403, 404, 422, other 4xx     → not retryable: the same request fails again
 *
 * The `retry-after-ms` / `retry-after` (seconds or an HTTP date) of a 429 or a 503
 * (the two answers HTTP defines it for) becomes the backoff of the next attempt,
 * instead of the jittered default: retrying earlier than asked only buys another 429.
 */
import { APICallError } from '@ai-sdk/provider';
import { BatonError } from '../errors.ts';
import type { Ai } from './ai-sdk.ts';

/** The provider asked for more than this? Then something is off; wait this long at most. */
const MAX_RETRY_AFTER_MS = 60 * 60_000;

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** The wait a response asks for, in ms: `retry-after-ms`, else `retry-after` (seconds or an HTTP date). */
export function retryAfterMs(headers: Record<string, string> | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const get = (name: string) => Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1]?.trim();
  let ms: number | undefined;
  const exact = get('retry-after-ms');
  if (exact && Number.isFinite(Number(exact))) ms = Number(exact);
  const after = get('retry-after');
  if (ms === undefined && after) {
    if (/^\d+(\.\d+)?$/.test(after)) ms = Number(after) * 1000;
    else if (!Number.isNaN(Date.parse(after))) ms = Date.parse(after) - now;
  }
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  return Math.round(Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms)));
}

/**
 * Maps what a model call threw to the step's error; anything that is not the SDK's passes
 * through. `ai`, the loaded SDK, unwraps its RetryError (the SDK's retries are off, but
 * a retry wrapper may still report the one attempt so).
 */
export function llmError(err: unknown, ai?: Pick<Ai, 'RetryError'>): unknown {
  const cause = ai?.RetryError.isInstance(err) ? err.lastError : err;
  if (APICallError.isInstance(cause)) {
    const status = cause.statusCode;
    const retryable = status === undefined ? true : isRetryableStatus(status);
    const wait = status === 429 || status === 503 ? retryAfterMs(cause.responseHeaders) : undefined;
    const label = status === undefined ? 'no answer' : `HTTP ${status}`;
    return new BatonError('llm_error', `the model call failed (${label}): ${cause.message}`, {
      retryable,
      retryAfterMs: wait,
      details: { status: status ?? null, ...(wait !== undefined ? { retryAfterMs: wait } : {}) },
      cause,
    });
  }
  return err;
}
