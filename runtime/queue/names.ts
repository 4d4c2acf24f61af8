/**
 * Redis key names. The KEDA ScaledObjects rendered by `baton deploy` use these same
 * functions, so the scaler watches exactly the stream and group the workers use.
 */
export const DEFAULT_PREFIX = 'baton:';

/** One consumer group per function stream; every worker of that function joins it. */
export const CONSUMER_GROUP = 'workers';

/**
 * A function's stream and its delayed set carry the function's name as a hash tag
 * (`{fn}`), so both live in one Redis Cluster slot and the scripts that move wake-ups
 * between them may declare both keys.
 */
export function streamKey(prefix: string, fn: string): string {
  return `${prefix}steps:{${fn}}`;
}

/** Wake-ups of `fn` not due yet (backoffs, wait timeouts, re-checks), scored by due time. */
export function delayedKey(prefix: string, fn: string): string {
  return `${prefix}delayed:{${fn}}`;
}

export function runChannel(prefix: string, runId: string): string {
  return `${prefix}run:${runId}`;
}

export function controlChannel(prefix: string): string {
  return `${prefix}control`;
}
