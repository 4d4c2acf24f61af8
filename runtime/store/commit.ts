/**
 * Step protocol, part 4: commit, fenced by the lease, as one statement (so one
 * implicit transaction and one round trip, PgBouncer-friendly).
 *
 * The fence is `lease_owner = $lease and next_seq = $seq and status = 'running'`,
 * checked on the run row locked first (FOR UPDATE in `run`). A worker that lost its
 * lease (paused past it, partitioned, or the run was cancelled) matches zero rows and
 * none of the CTEs write: its result is discarded. Which failure is worse: a double
 * commit would fork the run's history, a lost commit only re-runs a step whose side
 * effects are deduplicated by run_id:seq.
 *
 * Writes: the run (next step, status, lease released, claims reset), the step row
 * and its attempt row (`steps`, `step_attempts`), a checkpoint every K steps, and for
 * a `wait` the oldest signal of that name in the run's inbox, consumed at once, so
 * the run goes on instead of waiting. A signal buffered by a delivery that committed
 * while this statement queued on the lock is invisible here (other tables are read as
 * they were when the statement began); `runs.inbox`, read from the locked row, says
 * so, and the caller then runs `resumeFromInbox` (store/signals.ts).
 */
import { sql } from 'drizzle-orm';
import type { StepKind } from '../../schema/tables.ts';
import { type Db, queryPrepared } from '../db/connect.ts';
import type { ErrorJson } from '../errors.ts';
import type { Patch, State } from '../state.ts';
import { leaseFence, ms, succeededStep } from './step-sql.ts';

export interface StepUsage {
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
  /** US dollars (runtime/llm/prices.ts); null when unknown or not an LLM step. */
  costUsd: number | null;
}

/** What every fenced write of a step's result names: the step, the attempt and lease behind it, and what it did. */
export interface StepResultWrite {
  runId: string;
  seq: number;
  /** The attempt that produced this result (its `step_attempts` row). */
  attempt: number;
  leaseOwner: string;
  kind: StepKind;
  patch: Patch;
  usage: StepUsage;
}

/**
 * What a write needs to create the step and attempt rows when the claim did not write
 * them: a step claimed by the commit before it (store/continue.ts) gets its rows with
 * its result, unless it ran long enough to have them opened (store/step-rows.ts).
 */
export interface StepRows {
  /** The step's name. */
  step: string;
  worker: string | null;
  /** When it was claimed (the database's clock, as text), if its rows are not written yet; null: they are. */
  claimedAt: string | null;
}

/** The write-side names of a claimed step's result. */
export function resultWrite(
  step: {
    runId: string;
    seq: number;
    attempt: number;
    step: string;
    rows: { worker: string; claimedAt: string } | null;
    /** A step that ran unclaimed has no rows yet either; they are timed from its start (store/continue.ts). */
    unclaimed?: { worker: string } | null;
  },
  leaseOwner: string,
  kind: StepKind,
  patch: Patch,
  usage: StepUsage,
): StepResultWrite & StepRows {
  const { runId, seq, attempt, rows } = step;
  const worker = rows?.worker ?? step.unclaimed?.worker ?? null;
  return { runId, seq, attempt, leaseOwner, kind, patch, usage, step: step.step, worker, claimedAt: rows?.claimedAt ?? null };
}

export interface CommitInput extends StepResultWrite, StepRows {
  /** The run's next state. */
  outcome:
    | { type: 'next'; step: string }
    | { type: 'done'; output: unknown }
    | { type: 'wait'; step: string; signal: string; timeoutMs: number | null; request?: unknown };
  /** Full state to snapshot into `checkpoints`, or null to store only the patch. */
  snapshot: State | null;
}

export interface CommitResult {
  /** Delay before the next step may run (a wait's timeout), or null. */
  wakeInMs: number | null;
  /** A wait found its signal in the inbox and took it: the next step runs now. */
  resumed: boolean;
  /** Parked, but the inbox holds signals this statement could not see: look again (resumeFromInbox). */
  recheckInbox: boolean;
}


/** Returns null when the fence rejected the commit. */
export async function commitStep(db: Db, c: CommitInput): Promise<CommitResult | null> {
  const o = c.outcome;
  const status = o.type === 'done' ? 'succeeded' : o.type === 'wait' ? 'waiting' : 'running';
  const nextStep = o.type === 'done' ? null : o.step;
  const output = o.type === 'done' ? JSON.stringify(o.output ?? null) : null;
  const signal = o.type === 'wait' ? o.signal : null;
  const timeoutMs = o.type === 'wait' ? o.timeoutMs : null;
  const request = o.type === 'wait' && o.request !== undefined ? JSON.stringify(o.request) : null;
  const snapshot = c.snapshot === null ? null : JSON.stringify(c.snapshot);
  const rows = await queryPrepared<{ wake_in_ms: number | null; resumed: boolean; recheck_inbox: boolean }>(
    db,
    'baton_commit',
    sql`
    with ${leaseFence(c)}, pick as (
      select g.id from signals g, run
      where g.run_id = run.id and g.seq is null and g.name = ${signal}
      order by g.id limit 1
    ), taken as (
      update signals g set seq = ${c.seq} + 1 from pick where g.id = pick.id and g.seq is null
      returning g.name, g.payload
    ), seen as (
      -- Only a wait looks at the inbox.
      select count(*)::int as n from signals g, run where ${signal}::text is not null and g.run_id = run.id and g.seq is null
    ), fenced as (
      update runs r set
        next_seq = ${c.seq} + 1, next_step = ${nextStep},
        status = (case when exists (select 1 from taken) then 'running' else ${status} end)::run_status,
        output = ${output}::jsonb, attempt = 1, attempt_base = 0, claims = 0,
        lease_owner = null, lease_expires_at = null,
        wait_signal = case when exists (select 1 from taken) then null else ${signal} end,
        wait_request = case when exists (select 1 from taken) then null else ${request}::jsonb end,
        wake_at = case when ${timeoutMs}::int is null or exists (select 1 from taken) then null
          else now() + ${timeoutMs}::int * interval '1 millisecond' end,
        signal = (select jsonb_build_object('name', name, 'payload', payload, 'timedOut', false) from taken),
        inbox = r.inbox - (select count(*) from taken)::int,
        updated_at = now(),
        finished_at = case when ${status} = 'succeeded' then now() else null end
      from run
      where r.id = run.id
      returning (extract(epoch from r.wake_at - now()) * 1000)::float8 as wake_in_ms,
        r.status = 'running' and ${status} = 'waiting' as resumed,
        r.status = 'waiting' and r.inbox > (select n from seen) - (select count(*) from taken) as recheck_inbox
    ), ${succeededStep(c, nextStep, snapshot)}
    select wake_in_ms, resumed, recheck_inbox from fenced`,
  );
  const row = rows[0];
  return row ? { wakeInMs: row.wake_in_ms, resumed: row.resumed, recheckInbox: row.recheck_inbox } : null;
}

export interface FailureInput {
  runId: string;
  seq: number;
  /** The attempt that failed (its `step_attempts` row). */
  attempt: number;
  leaseOwner: string;
  kind: StepKind | null;
  error: ErrorJson;
  usage: StepUsage;
  /** Retry after this many ms, or null: no attempts left, the run fails. */
  retryInMs: number | null;
  /** The error to keep on the run when it fails. */
  runError: ErrorJson & { step: string; seq: number; attempt: number };
}

/**
 * Records a failed attempt (same fence as commit): the step row and the attempt row
 * keep its error and its token usage (a failed attempt was billed too); the run
 * schedules the retry or fails. The signal the step resumed with stays on the run,
 * for the retry. Returns false when the fence rejected it.
 */
export async function recordFailure(db: Db, f: FailureInput & StepRows): Promise<boolean> {
  const willRetry = f.retryInMs !== null;
  const error = JSON.stringify(f.error);
  const claimedAt = sql`coalesce(${f.claimedAt}::timestamptz, now())`;
  const rows = await queryPrepared<{ id: string }>(
    db,
    // The text differs between a retry and a final failure: one statement each.
    willRetry ? 'baton_fail_retry' : 'baton_fail_final',
    sql`
    with fenced as (
      update runs set
        attempt = attempt + ${willRetry ? 1 : 0}, claims = 0,
        status = ${willRetry ? 'running' : 'failed'}::run_status,
        error = ${willRetry ? null : JSON.stringify(f.runError)}::jsonb,
        wake_at = ${willRetry ? sql`now() + ${f.retryInMs}::int * interval '1 millisecond'` : sql`null`},
        finished_at = ${willRetry ? sql`null` : sql`now()`},
        lease_owner = null, lease_expires_at = null, updated_at = now()
      where id = ${f.runId} and lease_owner = ${f.leaseOwner} and next_seq = ${f.seq} and status = 'running'
      returning id
    ), step as (
      insert into steps as s (run_id, seq, name, status, attempt, kind, error, model, input_tokens, output_tokens, cost_usd, worker, started_at, finished_at, duration_ms)
      select ${f.runId}, ${f.seq}, ${f.step}, 'failed', ${f.attempt}, ${f.kind}::step_kind, ${error}::jsonb,
        ${f.usage.model}, ${f.usage.inputTokens}, ${f.usage.outputTokens}, ${f.usage.costUsd}, ${f.worker}, ${claimedAt}, now(), ${ms(sql`now() - ${claimedAt}`)}
      where exists (select 1 from fenced)
      on conflict (run_id, seq) do update set
        status = 'failed', kind = coalesce(excluded.kind, s.kind), error = excluded.error,
        model = excluded.model, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
    ), attempt as (
      insert into step_attempts as a (run_id, seq, attempt, status, error, model, input_tokens, output_tokens, cost_usd, worker, started_at, finished_at, duration_ms)
      select ${f.runId}, ${f.seq}, ${f.attempt}, 'failed', ${error}::jsonb,
        ${f.usage.model}, ${f.usage.inputTokens}, ${f.usage.outputTokens}, ${f.usage.costUsd}, ${f.worker}, ${claimedAt}, now(), ${ms(sql`now() - ${claimedAt}`)}
      where exists (select 1 from fenced)
      on conflict (run_id, seq, attempt) do update set
        status = 'failed', error = excluded.error,
        model = excluded.model, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - a.started_at`)}
    )
    select id from fenced`,
  );
  return rows.length > 0;
}
