/**
 * SQL shared by the statements that claim a step (claim.ts, branch.ts) and by the fenced
 * writes of its result (commit.ts, continue.ts, fanout.ts).
 */
import { type SQL, sql } from 'drizzle-orm';
import type { StepResultWrite } from './commit.ts';

/** Milliseconds of an interval, as the integer duration columns store them. */
export const ms = (interval: SQL) => sql`(extract(epoch from ${interval}) * 1000)::int`;

/**
 * The lease fence every write of a step's result starts with: the `run` CTE holds the run's row
 * only while this writer still owns the lease on this seq (a zombie's write matches nothing).
 */
export function leaseFence(c: Pick<StepResultWrite, 'runId' | 'seq' | 'leaseOwner'>): SQL {
  return sql`run as (
      select id from runs
      where id = ${c.runId} and lease_owner = ${c.leaseOwner} and next_seq = ${c.seq} and status = 'running'
      for update
    )`;
}

/**
 * CTEs to follow a `fenced` CTE that returns a row only while the lease holds: the step row and
 * its attempt row marked succeeded (no stale error, usage kept on both), and the state snapshot
 * when one is due (`snapshot` is its JSON, or null).
 */
export function succeededStep(c: StepResultWrite, nextStep: string | null, snapshot: string | null): SQL {
  return sql`step as (
      update steps set
        status = 'succeeded', kind = ${c.kind}::step_kind, patch = ${JSON.stringify(c.patch)}::jsonb, next_step = ${nextStep},
        error = null, model = ${c.usage.model}, input_tokens = ${c.usage.inputTokens}, output_tokens = ${c.usage.outputTokens}, cost_usd = ${c.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - started_at`)}
      where run_id = ${c.runId} and seq = ${c.seq} and exists (select 1 from fenced)
    ), attempt as (
      update step_attempts set
        status = 'succeeded', error = null,
        model = ${c.usage.model}, input_tokens = ${c.usage.inputTokens}, output_tokens = ${c.usage.outputTokens}, cost_usd = ${c.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - started_at`)}
      where run_id = ${c.runId} and seq = ${c.seq} and attempt = ${c.attempt} and exists (select 1 from fenced)
    ), checkpoint as (
      insert into checkpoints (run_id, seq, state)
      select ${c.runId}, ${c.seq}, ${snapshot}::jsonb from fenced where ${snapshot}::jsonb is not null
      on conflict (run_id, seq) do update set state = excluded.state, created_at = now()
    )`;
}

/**
 * The `attempt` CTE of a claim, after a `claimed` CTE with `attempt` and `crash_loop` columns:
 * the attempt's row opened `running`, or closed `failed` when the claim found a crash loop.
 */
export function claimedAttempt(runId: SQL, seq: SQL, worker: string): SQL {
  return sql`attempt as (
      insert into step_attempts as a (run_id, seq, attempt, status, worker, started_at, error, finished_at)
      select ${runId}, ${seq}, attempt, (case when crash_loop is null then 'running' else 'failed' end)::step_status,
        ${worker}, now(), crash_loop, case when crash_loop is null then null else now() end
      from claimed
      on conflict (run_id, seq, attempt) do update set
        -- The same attempt claimed again (its worker died): the row follows the latest claim.
        status = excluded.status, error = excluded.error, finished_at = excluded.finished_at,
        model = null, input_tokens = null, output_tokens = null,
        worker = case when excluded.status = 'failed' then a.worker else excluded.worker end,
        started_at = case when excluded.status = 'failed' then a.started_at else excluded.started_at end,
        duration_ms = case when excluded.status = 'failed' then ${ms(sql`now() - a.started_at`)} end
      returning 1
    )`;
}
