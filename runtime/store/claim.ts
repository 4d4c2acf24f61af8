/**
 * Step protocol, part 1: claim + load, in one statement and one round trip.
 *
 * Locks: the run row only, taken first (FOR NO KEY UPDATE in `run`: it excludes every other
 * claim, commit and heartbeat of the run, but not the foreign-key checks of rows that other
 * transactions insert for it, so those never close a cycle with a batch). Two workers racing for
 * the same (run_id, seq) serialise on that row; the loser reads the winner's version
 * and matches zero rows because the winner's lease is live. Zero rows is a normal
 * answer: `diagnose` then says what the message should become (dropped,
 * re-published, or re-checked when a lease or backoff ends). No transaction stays
 * open after this returns, so nothing is held while the step waits on an LLM or a tool.
 *
 * Everything the claim decides on comes from that locked row, never from another
 * table: a statement that queued on the lock sees the row as the previous holder
 * left it, but other tables only as they were when the statement began. So the
 * signal a resumed step sees is carried on the row (`runs.signal`, written by the
 * delivery or by the first claim after a timeout, kept for every attempt), and so is
 * the count of claims that never reached a commit or failure record (`runs.claims`):
 * past `maxClaims` this statement fails the run `crash_loop` instead of leasing it.
 *
 * Writes, in the same statement: the run (lease, status), the step row (`steps`, the
 * latest attempt) and the attempt row (`step_attempts`), all only when the run row
 * qualified. README "Inspect runs with SQL" documents the columns.
 */
import { sql } from 'drizzle-orm';
import { batcherPerDb } from '../db/batcher.ts';
import { type Db, queryPrepared } from '../db/connect.ts';
import type { BranchInfo, BranchOutcome, SignalDelivery } from '../define.ts';
import type { ErrorJson } from '../errors.ts';
import { type Patch, type State, replay } from '../state.ts';
import { claimedAttempt, ms } from './step-sql.ts';

export interface ClaimInput {
  runId: string;
  /** The function the message or invocation is for: a run of another function is never claimed. */
  function: string;
  seq: number;
  /** Unique per claim: the fence for heartbeat and commit. A claimer re-claiming its own lease gets it at once. */
  leaseOwner: string;
  worker: string;
  leaseMs: number;
  /** Claims of one step that never reached a commit or failure record before the run fails `crash_loop` (none: no limit). */
  maxClaims?: number;
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
  /** Attempts of this step before the last POST /retry: the step may run maxAttempts more. */
  attemptBase: number;
  revision: string | null;
  state: State;
  signal: SignalDelivery | undefined;
  /** Set when this claim found a crash loop: the run is now failed with this error and the step must not run. */
  crashLoop: ErrorJson | null;
  /** Set when the step is a branch of a fan-out (claimed by store/branch.ts, on its own row). */
  branch: BranchInfo | undefined;
  /** Set when the step joins a fan-out: every branch's outcome, in branch order. */
  branches: BranchOutcome[] | undefined;
  /**
   * Set while the step's rows are not written: it was claimed by the commit before it
   * (store/continue.ts), and its rows come with its result or when opened (store/step-rows.ts).
   */
  rows: { worker: string; claimedAt: string } | null;
}

/** A claimed step's row as the claim statements return it (store/first-step.ts reads the same shape). */
export interface ClaimRow {
  id: string;
  function: string;
  tenant: string;
  input: unknown;
  next_step: string;
  attempt: number;
  attempt_base: number;
  revision: string | null;
  signal: SignalDelivery | null;
  crash_loop: ErrorJson | null;
  snapshot: State | null;
  patches: Patch[];
  branches: BranchOutcome[] | null;
  seq: number;
}

/** The step a claim row describes, its state replayed from the snapshot and patches. */
export function claimedStepOf(row: ClaimRow): ClaimedStep {
  return {
    runId: row.id,
    function: row.function,
    tenant: row.tenant,
    input: row.input,
    step: row.next_step,
    seq: row.seq,
    attempt: row.attempt,
    attemptBase: row.attempt_base,
    revision: row.revision,
    state: replay(row.snapshot, row.patches),
    signal: row.signal ?? undefined,
    crashLoop: row.crash_loop,
    branch: undefined,
    branches: row.branches ?? undefined,
    rows: null,
  };
}

/**
 * Claims arriving while earlier ones are under way go together, as one statement over many
 * runs (runtime/db/batcher.ts): a worker reading a burst of messages claims them in a few
 * statements instead of one each. Each run is decided on its own locked row, as alone.
 */
const IN_FLIGHT = 4;
const MAX_BATCH = 200;
const claims = batcherPerDb<Db, ClaimInput, ClaimedStep | null>((db) => ({
  inFlight: IN_FLIGHT,
  maxBatch: MAX_BATCH,
  sendOne: async (one) => (await claimMany(db, [one])).get(one.runId) ?? null,
  sendMany: async (many) => {
    // Two claims of one run (a duplicate message) cannot share a statement: the later ones go after, alone.
    const first = new Map<string, ClaimInput>();
    for (const m of many) if (!first.has(m.runId)) first.set(m.runId, m);
    const claimed = await claimMany(db, [...first.values()]);
    const out: Array<ClaimedStep | null> = [];
    for (const m of many) {
      out.push(first.get(m.runId) === m ? (claimed.get(m.runId) ?? null) : (await claimMany(db, [m])).get(m.runId) ?? null);
    }
    return out;
  },
}));

export function claimStep(db: Db, c: ClaimInput): Promise<ClaimedStep | null> {
  return claims(db, c);
}

/** Claims many runs' steps in one statement (each run at most once); the claimed ones by run id. */
export async function claimMany(db: Db, batch: readonly ClaimInput[]): Promise<Map<string, ClaimedStep>> {
  const input = batch.map((c) => ({
    run_id: c.runId, function: c.function, seq: c.seq, lease_owner: c.leaseOwner, worker: c.worker, lease_ms: c.leaseMs,
    max_claims: c.maxClaims ?? null, revision: c.revision ?? null,
  }));
  const own = sql`run.lease_owner is not distinct from run.me`;
  const rows = await queryPrepared<ClaimRow>(
    db,
    'baton_claim_many',
    sql`
    with i as (
      select * from jsonb_to_recordset(${JSON.stringify(input)}::jsonb)
        as i(run_id uuid, function text, seq int, lease_owner text, worker text, lease_ms int, max_claims int, revision text)
    ), run as (
      select r.id, r.status, r.next_step, r.next_seq, r.attempt, r.claims, r.wait_signal, r.wake_at, r.lease_owner, r.lease_expires_at,
        r.branches, i.seq as want, i.lease_owner as me, i.worker, i.lease_ms, i.max_claims, i.revision as my_revision
      from runs r join i on r.id = i.run_id and r.function = i.function
      order by r.id
      for no key update of r
    ), go as (
      select run.id, run.status, run.wait_signal, run.claims, run.want, run.me, run.worker, run.lease_ms, run.my_revision, ${own} as own,
        (not ${own} and run.claims >= run.max_claims) is true as looping,
        ('step "' || run.next_step || '" was claimed ' || run.claims || ' times without reaching a commit or a failure: '
          || 'its worker died each time (out of memory, a native crash, process.exit?). Fix the step, then POST /v1/runs/'
          || run.id || '/retry') as loop_message
      from run
      where run.next_seq = run.want
        and ((run.status in ('queued', 'running') and (run.wake_at is null or run.wake_at <= now()))
             or (run.status = 'waiting' and run.wake_at <= now()))
        and (run.lease_owner is null or run.lease_expires_at < now() or ${own})
        -- A join waits for every branch of its fan-out (store/branch.ts).
        and run.branches = 0
    ), claimed as (
      update runs r set
        status = (case when go.looping then 'failed' else 'running' end)::run_status,
        lease_owner = case when go.looping then null else go.me end,
        lease_expires_at = case when go.looping then null else now() + go.lease_ms * interval '1 millisecond' end,
        wake_at = null, wait_signal = null,
        -- Decided once per step, kept for every attempt: a delivered signal, or the wait's timeout.
        signal = coalesce(r.signal, case when go.status = 'waiting'
          then jsonb_build_object('name', go.wait_signal, 'payload', null, 'timedOut', true) end),
        claims = case when go.looping or go.own then r.claims else r.claims + 1 end,
        error = case when go.looping then jsonb_build_object('code', 'crash_loop', 'message', go.loop_message, 'retryable', false,
          'details', jsonb_build_object('claims', go.claims), 'step', r.next_step, 'seq', r.next_seq, 'attempt', r.attempt) else r.error end,
        finished_at = case when go.looping then now() else null end,
        updated_at = now(),
        revision = case when go.looping then r.revision else coalesce(r.revision, go.my_revision) end
      from go
      where r.id = go.id
      returning r.id, r.function, r.tenant, r.input, r.next_step, r.attempt, r.attempt_base, r.revision, r.signal,
        case when go.looping then r.error end as crash_loop, go.want as seq, go.worker
    ), started as (
      insert into steps as s (run_id, seq, name, status, attempt, worker, started_at, error, finished_at)
      select id, seq, next_step, (case when crash_loop is null then 'running' else 'failed' end)::step_status,
        attempt, worker, now(), crash_loop, case when crash_loop is null then null else now() end
      from claimed
      on conflict (run_id, seq) do update set
        name = excluded.name, status = excluded.status, attempt = excluded.attempt, error = excluded.error,
        finished_at = excluded.finished_at, model = null, input_tokens = null, output_tokens = null,
        -- A crash loop closes the row the last (dead) claim opened.
        worker = case when excluded.status = 'failed' then s.worker else excluded.worker end,
        started_at = case when excluded.status = 'failed' then s.started_at else excluded.started_at end,
        duration_ms = case when excluded.status = 'failed' then ${ms(sql`now() - s.started_at`)} end
    ), ${claimedAttempt(sql`id`, sql`seq`, sql`worker`)}
    select c.id, c.function, c.tenant, c.input, c.next_step, c.attempt, c.attempt_base, c.revision, c.signal, c.crash_loop, c.seq,
      snap.state as snapshot,
      (select coalesce(jsonb_agg(s.patch order by s.seq), '[]'::jsonb) from steps s
        where s.run_id = c.id and s.seq < c.seq and s.seq > coalesce(snap.seq, -1)) as patches,
      -- A join (the step after a fan-out's last branch) sees every branch's outcome, in branch order.
      (select jsonb_agg(jsonb_build_object('index', b.branch, 'step', b.name, 'seq', b.seq, 'ok', b.status = 'succeeded',
          'output', b.output, 'error', case when b.status = 'succeeded' then null else b.error end) order by b.branch)
        from steps b where b.run_id = c.id
          and b.fanout_seq = (select p.fanout_seq from steps p where p.run_id = c.id and p.seq = c.seq - 1)) as branches
    from claimed c
    left join lateral (
      select k.seq, k.state from checkpoints k where k.run_id = c.id and k.seq < c.seq order by k.seq desc limit 1
    ) snap on true`,
  );
  return new Map(rows.map((row) => [row.id, claimedStepOf(row)]));
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
  /** Signals in the run's inbox (runs.inbox). */
  inbox: number;
  /** Unfinished branches of a fan-out (runs.branches): while above 0 the join is not due. */
  branches: number;
}

export async function probeRun(db: Db, runId: string): Promise<RunProbe | null> {
  const rows = await queryPrepared<RunProbe>(
    db,
    'baton_probe',
    sql`select status::text as status, function, next_seq,
      (lease_owner is not null and lease_expires_at > now()) as leased,
      (extract(epoch from lease_expires_at) * 1000)::float8 as lease_expires_ms,
      (extract(epoch from wake_at) * 1000)::float8 as wake_ms,
      (extract(epoch from now()) * 1000)::float8 as now_ms, inbox, branches
    from runs where id = ${runId}`,
  );
  return rows[0] ?? null;
}

/**
 * Pure decision table for an unclaimable (run_id, seq) message of function `fn`.
 * Delays are measured on the database's clock.
 */
export function diagnose(run: RunProbe | null, seq: number, fn?: string, opts: { unrenewedMs?: number } = {}): Verdict {
  if (!run) return { action: 'drop', reason: 'run not found' };
  // Misrouted (a hand-made envelope, a wrong stream): not ours to run or to repair.
  if (fn !== undefined && run.function !== fn) return { action: 'drop', reason: `run of function "${run.function}", not "${fn}"` };
  if (run.status === 'succeeded' || run.status === 'failed' || run.status === 'cancelled') {
    return { action: 'drop', reason: `run ${run.status}` };
  }
  if (run.next_seq < seq) return { action: 'drop', reason: 'message ahead of the run' };
  if (run.next_seq > seq) {
    if (run.leased) {
      // A live holder renews its lease every beat, so one with less than `unrenewedMs` left
      // (the caller passes a lease less a beat) missed a renewal: its holder may be dead. A
      // chain run in process leaves only its first message pending, so dropping it here would
      // leave the run to the sweeper. Look once more after the lease ends (a live holder's
      // renewed lease then drops it).
      const leftMs = run.lease_expires_ms !== null ? run.lease_expires_ms - run.now_ms : Number.POSITIVE_INFINITY;
      if (leftMs < (opts.unrenewedMs ?? 0)) {
        return { action: 'recheck', reason: 'the step in flight was not renewed lately', function: run.function, seq, delayMs: Math.max(0, leftMs) + 50 };
      }
      return { action: 'drop', reason: 'duplicate: the run has moved on and its next step is in flight' };
    }
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
