/**
 * SQL shared by the statements that claim a step (claim.ts, branch.ts) and by the fenced
 * writes of its result (commit.ts, continue.ts, fanout.ts).
 */
import { type SQL, sql } from 'drizzle-orm';
import type { StepResultWrite, StepRows } from './commit.ts';

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
 * its attempt row marked succeeded (no stale error, usage kept on both; created here when the
 * claim did not write them, see StepRows), and the state snapshot when one is due (`snapshot`
 * is its JSON, or null).
 */
export function succeededStep(c: StepResultWrite & StepRows, nextStep: string | null, snapshot: string | null): SQL {
  return succeededRows(sql`select ${c.runId}::uuid as run_id, ${c.seq}::int as seq, ${c.step}::text as step, ${c.attempt}::int as attempt,
        ${c.kind}::step_kind as kind, ${JSON.stringify(c.patch)}::jsonb as patch, ${nextStep}::text as next_step,
        ${c.usage.model}::text as model, ${c.usage.inputTokens}::int as input_tokens, ${c.usage.outputTokens}::int as output_tokens,
        ${c.usage.costUsd}::numeric as cost_usd, ${c.worker}::text as worker, coalesce(${c.claimedAt}::timestamptz, now()) as since,
        ${snapshot}::jsonb as snapshot
      where exists (select 1 from fenced)`);
}

/**
 * The same CTEs over many steps at once (store/continue.ts): `source` selects, for each step
 * whose fence held, run_id, seq, step, attempt, kind, patch, next_step, model, input_tokens,
 * output_tokens, cost_usd, worker, since (its claim, for rows written here) and snapshot.
 */
export function succeededRows(source: SQL): SQL {
  return sql`f as (
      ${source}
    ), step as (
      insert into steps as s (run_id, seq, name, status, attempt, kind, patch, next_step, model, input_tokens, output_tokens, cost_usd, worker, started_at, finished_at, duration_ms)
      select f.run_id, f.seq, f.step, 'succeeded', f.attempt, f.kind, f.patch, f.next_step, f.model, f.input_tokens, f.output_tokens, f.cost_usd,
        f.worker, f.since, now(), ${ms(sql`now() - f.since`)}
      from f
      on conflict (run_id, seq) do update set
        status = 'succeeded', kind = excluded.kind, patch = excluded.patch, next_step = excluded.next_step, error = null,
        model = excluded.model, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
    ), attempt as (
      insert into step_attempts as a (run_id, seq, attempt, status, model, input_tokens, output_tokens, cost_usd, worker, started_at, finished_at, duration_ms)
      select f.run_id, f.seq, f.attempt, 'succeeded', f.model, f.input_tokens, f.output_tokens, f.cost_usd, f.worker, f.since, now(), ${ms(sql`now() - f.since`)}
      from f
      on conflict (run_id, seq, attempt) do update set
        status = 'succeeded', error = null,
        model = excluded.model, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - a.started_at`)}
    ), checkpoint as (
      insert into checkpoints (run_id, seq, state)
      select f.run_id, f.seq, f.snapshot from f where f.snapshot is not null
      on conflict (run_id, seq) do update set state = excluded.state, created_at = now()
    )`;
}

/**
 * The `attempt` CTE of a claim, after a `claimed` CTE with `attempt` and `crash_loop` columns:
 * the attempt's row opened `running`, or closed `failed` when the claim found a crash loop.
 */
export function claimedAttempt(runId: SQL, seq: SQL, worker: SQL): SQL {
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
