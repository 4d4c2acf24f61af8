/**
 * Step protocol, part 4: commit, fenced by the lease, as one statement (so one
 * implicit transaction and one round trip, PgBouncer-friendly).
 *
 * The fence is `lease_owner = $lease and next_seq = $seq and status = 'running'`.
 * A worker that lost its lease (paused past it, partitioned, or the run was
 * cancelled) matches zero rows and none of the CTEs write: its result is discarded.
 * Which failure is worse: a double commit would fork the run's history, a lost
 * commit only re-runs a step whose side effects are deduplicated by run_id:seq.
 */
import { sql } from 'drizzle-orm';
import type { StepKind } from '../../schema/tables.ts';
import { type Db, query } from '../db/connect.ts';
import type { ErrorJson } from '../errors.ts';
import type { Patch, State } from '../state.ts';

export interface StepUsage {
  model: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

export interface CommitInput {
  runId: string;
  seq: number;
  leaseOwner: string;
  kind: StepKind;
  patch: Patch;
  usage: StepUsage;
  /** The run's next state. */
  outcome:
    | { type: 'next'; step: string }
    | { type: 'done'; output: unknown }
    | { type: 'wait'; step: string; signal: string; timeoutMs: number | null };
  /** Full state to snapshot into `checkpoints`, or null to store only the patch. */
  snapshot: State | null;
}

export interface CommitResult {
  /** Delay before the next step may run (a wait's timeout), or 0. */
  wakeInMs: number | null;
}

/** Returns null when the fence rejected the commit. */
export async function commitStep(db: Db, c: CommitInput): Promise<CommitResult | null> {
  const o = c.outcome;
  const status = o.type === 'done' ? 'succeeded' : o.type === 'wait' ? 'waiting' : 'running';
  const nextStep = o.type === 'done' ? null : o.step;
  const output = o.type === 'done' ? JSON.stringify(o.output ?? null) : null;
  const signal = o.type === 'wait' ? o.signal : null;
  const timeoutMs = o.type === 'wait' ? o.timeoutMs : null;
  const snapshot = c.snapshot === null ? null : JSON.stringify(c.snapshot);
  const rows = await query<{ id: string; wake_in_ms: number | null }>(
    db,
    sql`
    with fenced as (
      update runs set
        next_seq = ${c.seq} + 1, next_step = ${nextStep}, status = ${status}::run_status,
        output = ${output}::jsonb, attempt = 1,
        lease_owner = null, lease_expires_at = null,
        wait_signal = ${signal},
        wake_at = case when ${timeoutMs}::int is null then null else now() + ${timeoutMs}::int * interval '1 millisecond' end,
        updated_at = now(),
        finished_at = case when ${status} = 'succeeded' then now() else null end
      where id = ${c.runId} and lease_owner = ${c.leaseOwner} and next_seq = ${c.seq} and status = 'running'
      returning id, (extract(epoch from wake_at - now()) * 1000)::float8 as wake_in_ms
    ), step as (
      update steps set
        status = 'succeeded', kind = ${c.kind}::step_kind, patch = ${JSON.stringify(c.patch)}::jsonb, next_step = ${nextStep},
        model = ${c.usage.model}, input_tokens = ${c.usage.inputTokens}, output_tokens = ${c.usage.outputTokens},
        finished_at = now(), duration_ms = (extract(epoch from now() - started_at) * 1000)::int
      where run_id = ${c.runId} and seq = ${c.seq} and exists (select 1 from fenced)
    ), checkpoint as (
      insert into checkpoints (run_id, seq, state)
      select id, ${c.seq}, ${snapshot}::jsonb from fenced where ${snapshot}::jsonb is not null
      on conflict (run_id, seq) do update set state = excluded.state, created_at = now()
    )
    select id, wake_in_ms from fenced`,
  );
  const row = rows[0];
  return row ? { wakeInMs: row.wake_in_ms } : null;
}

export interface FailureInput {
  runId: string;
  seq: number;
  leaseOwner: string;
  kind: StepKind | null;
  error: ErrorJson;
  usage: StepUsage;
  /** Retry after this many ms, or null: no attempts left, the run fails. */
  retryInMs: number | null;
  /** The error to keep on the run when it fails. */
  runError: ErrorJson & { step: string; seq: number; attempt: number };
}

/** Records a failed attempt (same fence as commit). Returns false when the fence rejected it. */
export async function recordFailure(db: Db, f: FailureInput): Promise<boolean> {
  const willRetry = f.retryInMs !== null;
  const rows = await query<{ id: string }>(
    db,
    sql`
    with fenced as (
      update runs set
        attempt = attempt + ${willRetry ? 1 : 0},
        status = ${willRetry ? 'running' : 'failed'}::run_status,
        error = ${willRetry ? null : JSON.stringify(f.runError)}::jsonb,
        wake_at = ${willRetry ? sql`now() + ${f.retryInMs}::int * interval '1 millisecond'` : sql`null`},
        finished_at = ${willRetry ? sql`null` : sql`now()`},
        lease_owner = null, lease_expires_at = null, updated_at = now()
      where id = ${f.runId} and lease_owner = ${f.leaseOwner} and next_seq = ${f.seq} and status = 'running'
      returning id
    ), step as (
      update steps set
        status = 'failed', kind = coalesce(${f.kind}::step_kind, kind), error = ${JSON.stringify(f.error)}::jsonb,
        model = ${f.usage.model}, input_tokens = ${f.usage.inputTokens}, output_tokens = ${f.usage.outputTokens},
        finished_at = now(), duration_ms = (extract(epoch from now() - started_at) * 1000)::int
      where run_id = ${f.runId} and seq = ${f.seq} and exists (select 1 from fenced)
    )
    select id from fenced`,
  );
  return rows.length > 0;
}
