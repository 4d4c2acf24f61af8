/**
 * Step protocol, part 1: claim + load, in one statement and one round trip.
 *
 * Locks: the run row only (FOR UPDATE in `old`, then the UPDATE). Two workers racing
 * for the same (run_id, seq) serialise on that row; the loser re-reads it and its
 * UPDATE matches zero rows because the winner's lease is live. Zero rows is a normal
 * answer: `diagnose` then says what the message should become (dropped, re-published,
 * or re-checked when a lease or backoff ends). No transaction stays open after this
 * returns, so nothing is held while the step waits on an LLM or a tool.
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';
import type { SignalDelivery } from '../define.ts';
import { type Patch, type State, replay } from '../state.ts';

export interface ClaimInput {
  runId: string;
  /** The function the message or invocation is for: a run of another function is never claimed. */
  function: string;
  seq: number;
  /** Unique per claim: the fence for heartbeat and commit. */
  leaseOwner: string;
  worker: string;
  leaseMs: number;
  /** Code revision of this process; recorded on the run by its first claim (Knative pins later steps to it). */
  revision?: string | null;
}

export interface ClaimedStep {
  runId: string;
  function: string;
  tenant: string;
  input: unknown;
  step: string;
  seq: number;
  attempt: number;
  revision: string | null;
  state: State;
  signal: SignalDelivery | undefined;
}

interface ClaimRow {
  id: string;
  function: string;
  tenant: string;
  input: unknown;
  next_step: string;
  attempt: number;
  revision: string | null;
  old_status: string;
  old_signal: string | null;
  snapshot: State | null;
  patches: Patch[];
  signal: { name: string; payload: unknown } | null;
}

export async function claimStep(db: Db, c: ClaimInput): Promise<ClaimedStep | null> {
  const rows = await query<ClaimRow>(
    db,
    sql`
    with old as (
      select id, status, wait_signal from runs where id = ${c.runId} and function = ${c.function} for update
    ), claimed as (
      update runs r set
        status = 'running', lease_owner = ${c.leaseOwner},
        lease_expires_at = now() + ${c.leaseMs}::int * interval '1 millisecond',
        wake_at = null, wait_signal = null, updated_at = now(),
        revision = coalesce(r.revision, ${c.revision ?? null})
      from old
      where r.id = old.id and r.next_seq = ${c.seq}
        and ((r.status in ('queued', 'running') and (r.wake_at is null or r.wake_at <= now()))
             or (r.status = 'waiting' and r.wake_at <= now()))
        -- Our own lease: this statement is a retry whose first answer was lost.
        and (r.lease_owner is null or r.lease_expires_at < now() or r.lease_owner = ${c.leaseOwner})
      returning r.id, r.function, r.tenant, r.input, r.next_step, r.attempt, r.revision,
        old.status::text as old_status, old.wait_signal as old_signal
    ), started as (
      insert into steps as s (run_id, seq, name, status, attempt, worker, started_at)
      select id, ${c.seq}, next_step, 'running', attempt, ${c.worker}, now() from claimed
      on conflict (run_id, seq) do update set
        name = excluded.name, status = 'running', attempt = excluded.attempt, worker = excluded.worker,
        started_at = excluded.started_at, finished_at = null, duration_ms = null
      returning 1
    ), snap as (
      select seq, state from checkpoints where run_id = ${c.runId} and seq < ${c.seq} order by seq desc limit 1
    )
    select c.*,
      (select state from snap) as snapshot,
      (select coalesce(jsonb_agg(s.patch order by s.seq), '[]'::jsonb) from steps s
        where s.run_id = c.id and s.seq < ${c.seq} and s.seq > coalesce((select seq from snap), -1)) as patches,
      (select jsonb_build_object('name', g.name, 'payload', g.payload) from signals g
        where g.run_id = c.id and g.seq = ${c.seq}) as signal,
      (select count(*) from started)::int as started
    from claimed c`,
  );
  const row = rows[0];
  if (!row) return null;
  let signal: SignalDelivery | undefined;
  if (row.signal) signal = { name: row.signal.name, payload: row.signal.payload, timedOut: false };
  else if (row.old_status === 'waiting') signal = { name: row.old_signal ?? '', payload: null, timedOut: true };
  return {
    runId: row.id,
    function: row.function,
    tenant: row.tenant,
    input: row.input,
    step: row.next_step,
    seq: c.seq,
    attempt: row.attempt,
    revision: row.revision,
    state: replay(row.snapshot, row.patches),
    signal,
  };
}

/** What to do with a message whose claim matched nothing. */
export type Verdict =
  | { action: 'drop'; reason: string }
  /** The run is past this seq and idle: publish its current step (repairs a crash between commit and publish). */
  | { action: 'republish'; reason: string; function: string; seq: number; delayMs: number }
  /** Someone holds the run, or a backoff runs: look again after `delayMs`. */
  | { action: 'recheck'; reason: string; function: string; seq: number; delayMs: number };

export interface RunProbe {
  status: string;
  function: string;
  next_seq: number;
  leased: boolean;
  lease_expires_ms: number | null;
  wake_ms: number | null;
  now_ms: number;
}

export async function probeRun(db: Db, runId: string): Promise<RunProbe | null> {
  const rows = await query<RunProbe>(
    db,
    sql`select status::text as status, function, next_seq,
      (lease_owner is not null and lease_expires_at > now()) as leased,
      (extract(epoch from lease_expires_at) * 1000)::float8 as lease_expires_ms,
      (extract(epoch from wake_at) * 1000)::float8 as wake_ms,
      (extract(epoch from now()) * 1000)::float8 as now_ms
    from runs where id = ${runId}`,
  );
  return rows[0] ?? null;
}

/**
 * Pure decision table for an unclaimable (run_id, seq) message of function `fn`.
 * Delays are measured on the database's clock.
 */
export function diagnose(run: RunProbe | null, seq: number, fn?: string): Verdict {
  if (!run) return { action: 'drop', reason: 'run not found' };
  // Misrouted (a hand-made envelope, a wrong stream): not ours to run or to repair.
  if (fn !== undefined && run.function !== fn) return { action: 'drop', reason: `run of function "${run.function}", not "${fn}"` };
  if (run.status === 'succeeded' || run.status === 'failed' || run.status === 'cancelled') {
    return { action: 'drop', reason: `run ${run.status}` };
  }
  if (run.next_seq < seq) return { action: 'drop', reason: 'message ahead of the run' };
  if (run.next_seq > seq) {
    if (run.leased) return { action: 'drop', reason: 'duplicate: the run has moved on and its next step is in flight' };
    if (run.status === 'waiting' && run.wake_ms === null) return { action: 'drop', reason: 'duplicate: run waits for a signal' };
    const delayMs = run.wake_ms !== null ? Math.max(0, run.wake_ms - run.now_ms) : 0;
    return { action: 'republish', reason: 'repair: committed but not handed on', function: run.function, seq: run.next_seq, delayMs };
  }
  if (run.leased && run.lease_expires_ms !== null) {
    const delayMs = Math.max(0, run.lease_expires_ms - run.now_ms) + 50;
    return { action: 'recheck', reason: 'step in flight elsewhere', function: run.function, seq, delayMs };
  }
  if (run.status === 'waiting' && run.wake_ms === null) return { action: 'drop', reason: 'run waits for a signal' };
  if (run.wake_ms !== null && run.wake_ms > run.now_ms) {
    return { action: 'recheck', reason: 'backoff not over', function: run.function, seq, delayMs: run.wake_ms - run.now_ms };
  }
  return { action: 'recheck', reason: 'raced with another claimer', function: run.function, seq, delayMs: 100 };
}
