import { BatonError } from '../errors.ts';
import { isTransientDbError } from './sqlstate.ts';

export interface RetryOptions {
  /** Give up after this long (ms); the last error is rethrown as database_unavailable. */
  budgetMs: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn`, retrying transient database errors with exponential backoff and full
 * jitter until the budget is spent. Used at the store boundary only, so one outage
 * is retried in one place rather than at every layer.
 */
export async function withDbRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const started = Date.now();
  const base = opts.baseMs ?? 50;
  const max = opts.maxMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientDbError(err)) throw err;
      const delay = Math.random() * Math.min(max, base * 2 ** attempt);
      if (Date.now() - started + delay > opts.budgetMs || opts.signal?.aborted) {
        throw new BatonError('database_unavailable', 'the database is unavailable; try again shortly', { cause: err });
      }
      opts.onRetry?.(err, attempt, delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
