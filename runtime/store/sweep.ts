/**
 * The sweeper: Redis holds only wake-ups, so if it loses them (flush, failover) the
 * runs in PostgreSQL are still live. This finds live runs that made no progress for
 * `staleMs` and hands them back to the caller to re-publish.
 *
 * A run that sleeps on purpose (a wait's timeout or a retry's backoff: `wake_at` in the
 * future) is not lost, its wake-up waits in the delayed set: it is left alone until
 * that wake-up is overdue by `staleMs` too. So long waits are neither re-touched and
 * re-published every sweep nor do they fill the sweep's batch ahead of a lost run.
 *
 * One sweeper at a time, through a transaction-scoped advisory lock
 * (pg_try_advisory_xact_lock): a session lock would not survive PgBouncer's
 * transaction pooling. Touching updated_at throttles re-publishing to once per
 * staleMs per run. A duplicate wake-up is harmless: the claim admits one step runner.
 *
 * A run that is fanning out (`branches > 0`) holds no lease itself and its next step,
 * the join, is not due: what is re-published for it is each unfinished branch that no
 * live lease holds (README "Fan-out and join").
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';

const SWEEP_LOCK = 0x6261746f6e01;

export interface SweptRun {
  id: string;
  function: string;
  next_seq: number;
  /** Wait this long before running (a backoff or a wait's timeout still pending). */
  delay_ms: number;
}

export interface SweepOptions {
  staleMs: number;
  /** A longer threshold per function, for functions whose streams hold a backlog (see the worker). */
  staleMsByFunction?: Readonly<Record<string, number>>;
  limit?: number;
  /** Also take runs whose lease is still live (embedded mode at start: no other process can hold one). */
  ignoreLeases?: boolean;
}

/** Returns the runs to re-publish, or null when another sweeper holds the lock. */
export async function sweep(db: Db, opts: SweepOptions): Promise<SweptRun[] | null> {
  return db.transaction(async (tx) => {
    const [lock] = await query<{ ok: boolean }>(tx as unknown as Db, sql`select pg_try_advisory_xact_lock(${SWEEP_LOCK}) as ok`);
    if (!lock?.ok) return null;
    const leaseFree = opts.ignoreLeases ? sql`true` : sql`(lease_owner is null or lease_expires_at < now())`;
    const staleBefore = sql`now() - coalesce((${JSON.stringify(opts.staleMsByFunction ?? {})}::jsonb ->> function)::int, ${opts.staleMs}::int)
                                   * interval '1 millisecond'`;
    // At start in embedded mode (ignoreLeases) every live run is re-published, sleepers with their delay.
    const wakeDue = opts.ignoreLeases ? sql`true` : sql`(wake_at is null or wake_at < ${staleBefore})`;
    const branchFree = opts.ignoreLeases ? sql`true` : sql`(s.lease_owner is null or s.lease_expires_at < now())`;
    return query<SweptRun>(
      tx as unknown as Db,
      sql`
      with swept as (
      update runs set updated_at = now(), lease_owner = case when ${opts.ignoreLeases ?? false} then null else lease_owner end
      where id in (
        select id from runs
        where status in ('queued', 'running', 'waiting')
          and updated_at < ${staleBefore}
          and ${wakeDue}
          and ${leaseFree}
          and not (status = 'waiting' and wake_at is null)
        order by updated_at
        limit ${opts.limit ?? 500}
        for update skip locked
      )
      returning id, function, next_seq, branches,
        greatest(0, coalesce(extract(epoch from wake_at - now()) * 1000, 0))::float8 as delay_ms
      )
      select id, function, next_seq, delay_ms from swept where branches = 0
      union all
      select s.run_id, w.function, s.seq, greatest(0, coalesce(extract(epoch from s.wake_at - now()) * 1000, 0))::float8
      from swept w join steps s on s.run_id = w.id
      where w.branches > 0 and s.branch is not null and s.status in ('queued', 'running') and ${branchFree}`,
    );
  });
}
