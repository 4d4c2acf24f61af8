/**
 * Redis key names. The KEDA ScaledObjects rendered by `baton deploy` use these same
 * functions, so the scaler watches exactly the stream and group the workers use.
 */
export const DEFAULT_PREFIX = 'baton:';

/** One consumer group per function stream; every worker of that function joins it. */
export const CONSUMER_GROUP = 'workers';

export function streamKey(prefix: string, fn: string): string {
  return `${prefix}steps:${fn}`;
}

export function delayedKey(prefix: string): string {
  return `${prefix}delayed`;
}

export function runChannel(prefix: string, runId: string): string {
  return `${prefix}run:${runId}`;
}

export function controlChannel(prefix: string): string {
  return `${prefix}control`;
}
