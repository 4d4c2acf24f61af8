/**
 * Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
 * Full jitter spreads a burst of failures (a provider's 429s) instead of retrying
 * them in lockstep.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}
