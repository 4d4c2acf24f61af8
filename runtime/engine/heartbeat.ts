/**
 * The lease heartbeat of a claimed step. It runs from the claim until the step's
 * commit (or failure record) is acknowledged, not just while the body runs: a commit
 * retried through a database blip keeps its lease, so no other worker takes over a
 * step whose result is only waiting to be written.
 */
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { heartbeat } from '../store/lease.ts';

/**
 * Starts beating; `onLost` is called once if the lease turns out to be gone, `onHeld`
 * after each beat that extended it. Returns the stop function.
 */
export function keepLease(
  p: Platform,
  runId: string,
  leaseOwner: string,
  onLost: (reason: BatonError) => void,
  onHeld?: () => void,
): () => void {
  let lost = false;
  const beat = setInterval(() => {
    heartbeat(p.db, runId, leaseOwner, p.config.leaseMs).then(
      (held) => {
        if (held) onHeld?.();
        if (held || lost) return;
        lost = true;
        onLost(new BatonError('lease_lost', 'the lease was lost'));
      },
      // A failed heartbeat (database blip) is not a lost lease; the commit's fence decides.
      (err: Error) => p.log.warn({ err: err.message, runId }, 'heartbeat failed'),
    );
  }, p.config.heartbeatMs);
  return () => clearInterval(beat);
}
