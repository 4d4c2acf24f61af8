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
 * owners whose lease is still held; any other was taken over or cancelled. A lease with
 * a `seq` is a fan-out branch's, held on its own step row (store/branch.ts); it is held
 * while its run is `running`. Locks: run rows for run leases, step rows for branch
 * leases, never both for one run, so it waits on no one who waits on it.
 */
export async function heartbeatMany(
  db: Db,
  leases: readonly { runId: string; leaseOwner: string; seq?: number | null }[],
  leaseMs: number,
): Promise<Set<string>> {
  if (leases.length === 0) return new Set();
  const rows = await queryPrepared<{ lease_owner: string }>(
    db,
    'baton_heartbeat_many_ordered',
    sql`with l as (
          select * from jsonb_to_recordset(${JSON.stringify(leases)}::jsonb) as l("runId" uuid, "leaseOwner" text, seq int)
        ), held_runs as (
          -- Locked in id order, as the claims and commits that share a statement lock theirs:
          -- a heartbeat and a batch never wait on each other in a cycle.
          select r.id from runs r join l on l.seq is null and r.id = l."runId" and r.lease_owner = l."leaseOwner"
          where r.status = 'running'
          order by r.id
          for no key update of r
        ), run_leases as (
          update runs r set lease_expires_at = now() + ${leaseMs}::int * interval '1 millisecond'
          from held_runs h where r.id = h.id
          returning r.lease_owner
        ), held_branches as (
          select s.run_id, s.seq from steps s join l on l.seq is not null and s.run_id = l."runId" and s.seq = l.seq and s.lease_owner = l."leaseOwner"
          where s.status = 'running' and exists (select 1 from runs r where r.id = s.run_id and r.status = 'running')
          order by s.run_id, s.seq
          for no key update of s
        ), branch_leases as (
          update steps s set lease_expires_at = now() + ${leaseMs}::int * interval '1 millisecond'
          from held_branches h where s.run_id = h.run_id and s.seq = h.seq
          returning s.lease_owner
        )
        select lease_owner from run_leases union all select lease_owner from branch_leases`,
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
