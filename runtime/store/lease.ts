/**
 * Leases: a heartbeat extends a live lease while the step waits on its call;
 * release gives it up (graceful shutdown). Both are fenced by the lease owner.
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';

/** Extends the lease. False: the lease is gone (taken over, or the run was cancelled): abort the step. */
export async function heartbeat(db: Db, runId: string, leaseOwner: string, leaseMs: number): Promise<boolean> {
  const rows = await query<{ id: string }>(
    db,
    sql`update runs set lease_expires_at = now() + ${leaseMs}::int * interval '1 millisecond'
        where id = ${runId} and lease_owner = ${leaseOwner} and status = 'running'
        returning id`,
  );
  return rows.length > 0;
}

/**
 * Gives the lease up so another worker can claim the step at once. A step handed
 * back is not a crashed claim, so it does not count towards a crash loop.
 */
export async function releaseLease(db: Db, runId: string, leaseOwner: string): Promise<boolean> {
  const rows = await query<{ id: string }>(
    db,
    sql`update runs set lease_owner = null, lease_expires_at = null, claims = greatest(claims - 1, 0), updated_at = now()
        where id = ${runId} and lease_owner = ${leaseOwner}
        returning id`,
  );
  return rows.length > 0;
}
