/**
 * The lease heartbeat of a claimed step. It runs from the claim until the step's
 * commit (or failure record) is acknowledged, not just while the body runs: a commit
 * retried through a database blip keeps its lease, so no other worker takes over a
 * step whose result is only waiting to be written.
 *
 * One statement per beat for every step in flight in this process, not one per step:
 * a worker driving a thousand LLM-waiting steps sends one write (one WAL flush) every
 * `heartbeatMs`, not a thousand. Each lease is still extended at least once per
 * `heartbeatMs` after its claim, as before. It goes over a connection of its own
 * (`Database.leases`), never queued behind the steps' claims and commits.
 */
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { heartbeatMany } from '../store/lease.ts';

interface Held {
  runId: string;
  /** A fan-out's branch holds its lease on its own step row: its seq. */
  seq: number | null;
  onLost: (reason: BatonError) => void;
  onHeld: (() => void) | undefined;
}

interface Keeper {
  /** By lease owner (unique per claim). */
  held: Map<string, Held>;
  timer: ReturnType<typeof setInterval> | null;
  beating: boolean;
}

const keepers = new WeakMap<Platform, Keeper>();

/**
 * Starts beating; `onLost` is called once if the lease turns out to be gone, `onHeld`
 * after each beat that extended it. Returns the stop function. A branch of a fan-out
 * (`branch` set) holds its lease on its own step row.
 */
export function keepLease(
  p: Platform,
  at: { runId: string; seq: number; branch: unknown },
  leaseOwner: string,
  onLost: (reason: BatonError) => void,
  onHeld?: () => void,
): () => void {
  let k = keepers.get(p);
  if (!k) keepers.set(p, (k = { held: new Map(), timer: null, beating: false }));
  const keeper = k;
  keeper.held.set(leaseOwner, { runId: at.runId, seq: at.branch ? at.seq : null, onLost, onHeld });
  keeper.timer ??= setInterval(() => void beat(p, keeper), p.config.heartbeatMs);
  return () => {
    keeper.held.delete(leaseOwner);
    if (keeper.held.size === 0 && keeper.timer) {
      clearInterval(keeper.timer);
      keeper.timer = null;
    }
  };
}

async function beat(p: Platform, keeper: Keeper): Promise<void> {
  // A beat still waiting on the database (a blip): the next tick goes instead of piling up.
  if (keeper.beating || keeper.held.size === 0) return;
  keeper.beating = true;
  const sent = [...keeper.held].map(([leaseOwner, h]) => ({ runId: h.runId, seq: h.seq, leaseOwner }));
  try {
    const held = await heartbeatMany(p.database.leases, sent, p.config.leaseMs);
    for (const { leaseOwner } of sent) {
      if (held.has(leaseOwner)) {
        keeper.held.get(leaseOwner)?.onHeld?.();
        continue;
      }
      const h = keeper.held.get(leaseOwner);
      // Stopped meanwhile (its commit released the lease): not lost.
      if (!h) continue;
      keeper.held.delete(leaseOwner);
      h.onLost(new BatonError('lease_lost', 'the lease was lost'));
    }
  } catch (err) {
    // A failed heartbeat (database blip) is not a lost lease; the commit's fence decides.
    p.log.warn({ err: (err as Error).message, steps: sent.length }, 'heartbeat failed');
  } finally {
    keeper.beating = false;
  }
}
