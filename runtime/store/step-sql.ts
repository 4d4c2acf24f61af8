/**
 * SQL shared by the fenced writes of a step's result (commit.ts, continue.ts, fanout.ts):
 * one text for what every successful commit does to the step, its attempt and the snapshot.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { StepResultWrite } from './commit.ts';

/** Milliseconds of an interval, as the integer duration columns store them. */
export const ms = (interval: SQL) => sql`(extract(epoch from ${interval}) * 1000)::int`;

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
