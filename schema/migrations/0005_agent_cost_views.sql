-- Cost next to tokens (README "Inspect runs with SQL", "Cost"). Columns are only appended, so
-- CREATE OR REPLACE keeps every existing query of these views working.

-- What a run cost: every attempt counts (a failed attempt was billed too). cost_usd is NULL when
-- any of its LLM attempts used a model without a price.
CREATE OR REPLACE VIEW "run_summary" AS
SELECT r.id,
       r.function,
       r.tenant,
       r.status,
       r.created_at,
       r.finished_at,
       (extract(epoch FROM coalesce(r.finished_at, now()) - r.created_at) * 1000)::bigint AS wall_ms,
       coalesce(s.steps, 0)::int AS steps,
       coalesce(a.attempts, 0)::int AS attempts,
       coalesce(s.retried_steps, 0)::int AS retried_steps,
       coalesce(s.busy_ms, 0)::bigint AS busy_ms,
       coalesce(a.input_tokens, 0)::bigint AS input_tokens,
       coalesce(a.output_tokens, 0)::bigint AS output_tokens,
       r.next_step,
       r.error ->> 'code' AS error_code,
       r.replay_of,
       CASE WHEN coalesce(a.unpriced, 0) > 0 THEN NULL ELSE coalesce(a.cost_usd, 0) END::numeric(14, 8) AS cost_usd
FROM runs r
LEFT JOIN LATERAL (
  SELECT count(*) AS steps, count(*) FILTER (WHERE attempt > 1) AS retried_steps, sum(duration_ms) AS busy_ms
  FROM steps WHERE run_id = r.id
) s ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS attempts, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE model IS NOT NULL AND cost_usd IS NULL) AS unpriced
  FROM step_attempts WHERE run_id = r.id
) a ON true;
--> statement-breakpoint

-- Tokens and cost per function, model and day (UTC), every attempt counted.
CREATE OR REPLACE VIEW "token_usage_by_function" AS
SELECT r.function,
       a.model,
       (date_trunc('day', a.finished_at AT TIME ZONE 'UTC'))::date AS day,
       count(DISTINCT a.run_id)::int AS runs,
       count(DISTINCT (a.run_id, a.seq))::int AS llm_steps,
       coalesce(sum(a.input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(a.output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(a.input_tokens), 0)::bigint + coalesce(sum(a.output_tokens), 0)::bigint AS total_tokens,
       count(*)::int AS llm_calls,
       sum(a.cost_usd)::numeric(14, 8) AS cost_usd
FROM step_attempts a
JOIN runs r ON r.id = a.run_id
WHERE a.model IS NOT NULL
GROUP BY r.function, a.model, 3;
