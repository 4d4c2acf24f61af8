/**
 * Opens the rows of a step that the commit before it claimed (store/continue.ts): its
 * `steps` row and its attempt's `step_attempts` row, `running`, as a claim through the
 * queue writes them. A quick step never needs this (its rows come with its result, one
 * write each); a step that makes an outside call or runs a while gets them now, so the
 * step in flight shows in SQL, the inspector and the event stream.
 *
 * Fenced like a commit, and it takes the run's row lock (FOR SHARE) first, so it runs
 * wholly before or wholly after the step's commit: after it, the fence no longer holds
 * and nothing is written; before it, the commit finds the rows and completes them.
 */
import { sql } from 'drizzle-orm';
import { type Db, queryPrepared } from '../db/connect.ts';

export interface OpenRowsInput {
  runId: string;
  seq: number;
  attempt: number;
  /** The step's name. */
  step: string;
  leaseOwner: string;
  worker: string;
  /** When the step was claimed (the database's clock, as text). */
  claimedAt: string;
}

/** True when the rows are open (written now or before); false when the lease no longer holds. */
export async function openStepRows(db: Db, c: OpenRowsInput): Promise<boolean> {
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_open_step_rows',
    sql`
    with run as (
      select id from runs
      where id = ${c.runId} and lease_owner = ${c.leaseOwner} and next_seq = ${c.seq} and status = 'running'
      for share
    ), step as (
      insert into steps (run_id, seq, name, status, attempt, worker, started_at)
      select id, ${c.seq}, ${c.step}, 'running', ${c.attempt}, ${c.worker}, ${c.claimedAt}::timestamptz from run
      on conflict (run_id, seq) do nothing
    ), attempt as (
      insert into step_attempts (run_id, seq, attempt, status, worker, started_at)
      select id, ${c.seq}, ${c.attempt}, 'running', ${c.worker}, ${c.claimedAt}::timestamptz from run
      on conflict (run_id, seq, attempt) do nothing
    )
    select id from run`,
  );
  return rows.length > 0;
}
