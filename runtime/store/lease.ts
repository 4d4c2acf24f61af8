/**
 * Leases: a heartbeat extends a live lease while the step waits on its call;
 * release gives it up (graceful shutdown). Both are fenced by the lease owner.
 */
import { sql } from 'drizzle-orm';
import { type Db, query, queryPrepared } from '../db/connect.ts';

/** Extends the lease. False: the lease is gone (taken over, or the run was cancelled): abort the step. */
export async function heartbeat(db: Db, runId: string, leaseOwner: string, leaseMs: number): Promise<boolean> {
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_heartbeat',
    sql`update runs set lease_expires_at = now() + ${leaseMs}::int * interval '1 millisecond'
        where id = ${runId} and lease_owner = ${leaseOwner} and status = 'running'
        returning id`,
  );
  return rows.length > 0;
}

/**
 * Extends many leases in one statement (a worker's steps in flight). Returns the lease
 * owners whose lease is still held; any other was taken over or cancelled.
 */
export async function heartbeatMany(db: Db, leases: readonly { runId: string; leaseOwner: string }[], leaseMs: number): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const rows = await queryPrepared<{ lease_owner: string }>(
    db,
    'baton_heartbeat_many',
    sql`update runs r set lease_expires_at = now() + ${leaseMs}::int * interval '1 millisecond'
        from jsonb_to_recordset(${JSON.stringify(leases)}::jsonb) as l("runId" uuid, "leaseOwner" text)
        where r.id = l."runId" and r.lease_owner = l."leaseOwner" and r.status = 'running'
        returning r.lease_owner`,
  );
  return new Set(rows.map((r) => r.lease_owner));
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
