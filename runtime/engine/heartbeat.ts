/**
 * The lease heartbeat of a claimed step. It runs from the claim until the step's
 * commit (or failure record) is acknowledged, not just while the body runs: a commit
 * retried through a database blip keeps its lease, so no other worker takes over a
 * step whose result is only waiting to be written.
 */
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { heartbeatBranch } from '../store/branch.ts';
import { heartbeat } from '../store/lease.ts';

/**
 * Starts beating; `onLost` is called once if the lease turns out to be gone. Returns the
 * stop function. A branch of a fan-out holds its lease on its own step row (`branch`).
 */
export function keepLease(
  p: Platform,
  at: { runId: string; seq: number; branch: unknown },
  leaseOwner: string,
  onLost: (reason: BatonError) => void,
): () => void {
  const { runId, seq } = at;
  const extend = at.branch
    ? () => heartbeatBranch(p.db, runId, seq, leaseOwner, p.config.leaseMs)
    : () => heartbeat(p.db, runId, leaseOwner, p.config.leaseMs);
  let lost = false;
  const beat = setInterval(() => {
    extend().then(
      (held) => {
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
