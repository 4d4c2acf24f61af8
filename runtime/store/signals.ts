/**
 * Signals (README "Inspect runs with SQL", table `signals`): every signal sent to a
 * live run is kept, in arrival order, and consumed exactly once, by the first step
 * that waits for its name.
 *
 *   - the run waits for it (and no older signal is in its inbox): it resumes now,
 *     with the signal on the run row (`runs.signal`, what the next claim hands the step);
 *   - otherwise (the run is queued, its step still runs, it waits for another name)
 *     the signal waits in the inbox (`signals.seq` NULL, counted in `runs.inbox`) until
 *     a step returns `wait(name)`: that step's commit takes it (store/commit.ts).
 *
 * Locks: the run row, first. A delivery, a claim and a commit of the same run
 * serialise on it, and every decision reads that row, never the inbox alone: a
 * statement that queued on the lock sees the row as the previous holder left it but
 * other tables only as they were when it began. `runs.inbox` is how a statement
 * knows the inbox holds signals it cannot see; `resumeFromInbox`, a new statement, then
 * sees them. A signal sent later than another is never consumed before it: everything
 * a statement cannot see arrived after everything it can.
 */
import { sql } from 'drizzle-orm';
import type { RunStatus } from '../../schema/tables.ts';
import { type Db, query } from '../db/connect.ts';
import type { Wakeup } from './control.ts';

export interface Delivered {
  /** The run's status when the signal arrived (a finished run keeps nothing). */
  runStatus: RunStatus;
  /** The signal's id (arrival order), or null when the run had finished. */
  signalId: number | null;
  /** True when it waits in the inbox; false when the waiting step takes it now. */
  buffered: boolean;
  /** Publish this to resume the run (the run waited for this signal). */
  wakeup: Wakeup | null;
  /** The run waits for this name but older signals are in its inbox: call resumeFromInbox. */
  recheckInbox: boolean;
}

const LIVE = sql`('queued', 'running', 'waiting')`;

/** Delivers `name` to a run: to its waiting step, or into its inbox. Null when there is no such run. */
export async function deliverSignal(db: Db, runId: string, name: string, payload: unknown): Promise<Delivered | null> {
  const json = JSON.stringify(payload ?? null);
  const rows = await query<{
    status: RunStatus;
    function: string;
    next_seq: number;
    signal_id: string | null;
    now: boolean | null;
    waits: boolean | null;
  }>(
    db,
    sql`
    with run as (
      select id, function, status, next_seq, (status = 'waiting' and wait_signal = ${name}) as waits, inbox
      from runs where id = ${runId}
      for update
    ), live as (
      -- Straight to the waiting step only when no older signal is in the inbox (arrival order).
      select id, next_seq, waits, waits and inbox = 0 as now from run where status in ${LIVE}
    ), kept as (
      insert into signals (run_id, seq, name, payload)
      select id, case when now then next_seq end, ${name}, ${json}::jsonb from live
      returning id
    ), run_after as (
      update runs r set
        status = case when live.now then 'running'::run_status else r.status end,
        wait_signal = case when live.now then null else r.wait_signal end,
        wake_at = case when live.now then null else r.wake_at end,
        signal = case when live.now then jsonb_build_object('name', ${name}::text, 'payload', ${json}::jsonb, 'timedOut', false) else r.signal end,
        inbox = r.inbox + case when live.now then 0 else 1 end,
        updated_at = case when live.now then now() else r.updated_at end
      from live
      where r.id = live.id
      returning r.id
    )
    select run.status::text as status, run.function, run.next_seq, (select id from kept)::text as signal_id,
      live.now, live.waits, (select count(*) from run_after)::int as written
    from run left join live on true`,
  );
  const row = rows[0];
  if (!row) return null;
  const resumed = row.now === true;
  return {
    runStatus: row.status,
    signalId: row.signal_id === null ? null : Number(row.signal_id),
    buffered: row.signal_id !== null && !resumed,
    wakeup: resumed ? { id: runId, function: row.function, next_seq: row.next_seq } : null,
    recheckInbox: row.waits === true && !resumed,
  };
}

/**
 * A waiting run takes the oldest signal of the name it waits for from its inbox, if
 * there is one, and resumes. Returns the wake-up to publish (and which signal it
 * took), or null.
 */
export async function resumeFromInbox(db: Db, runId: string): Promise<(Wakeup & { signalId: number }) | null> {
  const rows = await query<Wakeup & { signal_id: string }>(
    db,
    sql`
    with run as (
      select id, function, next_seq, wait_signal from runs where id = ${runId} and status = 'waiting'
      for update
    ), pick as (
      select g.id from signals g, run
      where g.run_id = run.id and g.seq is null and g.name = run.wait_signal
      order by g.id limit 1
    ), taken as (
      update signals g set seq = run.next_seq from pick, run where g.id = pick.id and g.seq is null
      returning g.id, g.name, g.payload
    ), woke as (
      update runs r set
        status = 'running', wait_signal = null, wake_at = null, inbox = r.inbox - 1, updated_at = now(),
        signal = (select jsonb_build_object('name', name, 'payload', payload, 'timedOut', false) from taken)
      from run
      where r.id = run.id and exists (select 1 from taken)
      returning r.id, r.function, r.next_seq
    )
    select woke.*, (select id from taken)::text as signal_id from woke`,
  );
  const row = rows[0];
  return row ? { id: row.id, function: row.function, next_seq: row.next_seq, signalId: Number(row.signal_id) } : null;
}
