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
import { batcherPerDb } from '../db/batcher.ts';
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

/**
 * Opens arriving while earlier ones are under way go together, as one statement over many runs
 * (runtime/db/batcher.ts): a wave of model calls going out at once (a thousand agents whose
 * answers came together) opens its rows in a few statements instead of one each.
 */
const opens = batcherPerDb<Db, OpenRowsInput, boolean>((db) => ({
  inFlight: 4,
  maxBatch: 200,
  sendOne: async (one) => (await openMany(db, [one])).has(one.runId),
  sendMany: async (many) => {
    const open = await openMany(db, many);
    return many.map((m) => open.has(m.runId));
  },
}));

/** True when the rows are open (written now or before); false when the lease no longer holds. */
export function openStepRows(db: Db, c: OpenRowsInput): Promise<boolean> {
  return opens(db, c);
}

/** Opens the rows of many runs' steps; the runs whose lease held. Runs are locked in id order, as every batch locks them. */
async function openMany(db: Db, batch: readonly OpenRowsInput[]): Promise<Set<string>> {
  const input = batch.map((c) => ({
    run_id: c.runId, seq: c.seq, attempt: c.attempt, step: c.step, lease_owner: c.leaseOwner, worker: c.worker, claimed_at: c.claimedAt,
  }));
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_open_step_rows_many',
    sql`
    with i as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as i(run_id uuid, seq int, attempt int, step text, lease_owner text, worker text, claimed_at timestamptz)
    ), locked as (
      select r.id from runs r join i on r.id = i.run_id
      where r.lease_owner = i.lease_owner and r.next_seq = i.seq and r.status = 'running'
      order by r.id
      for share of r
    ), run as (
      select i.* from i join locked on locked.id = i.run_id
    ), step as (
      insert into steps (run_id, seq, name, status, attempt, worker, started_at)
      select run_id, seq, step, 'running', attempt, worker, claimed_at from run
      on conflict (run_id, seq) do nothing
    ), attempt as (
      insert into step_attempts (run_id, seq, attempt, status, worker, started_at)
      select run_id, seq, attempt, 'running', worker, claimed_at from run
      on conflict (run_id, seq, attempt) do nothing
    )
    select run_id as id from run`,
  );
  return new Set(rows.map((r) => r.id));
}
