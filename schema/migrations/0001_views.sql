-- Views for people reading runs with psql (README "Inspect runs with SQL" → "Views").
-- Plain views over runs and steps: nothing is stored twice, and they are always current.

-- One row per run: its outcome, how long it took, how much work and how many tokens.
CREATE VIEW "run_summary" AS
SELECT r.id,
       r.function,
       r.tenant,
       r.status,
       r.created_at,
       r.finished_at,
       (extract(epoch FROM coalesce(r.finished_at, now()) - r.created_at) * 1000)::bigint AS wall_ms,
       count(s.seq)::int AS steps,
       coalesce(sum(s.attempt), 0)::int AS attempts,
       (count(s.seq) FILTER (WHERE s.attempt > 1))::int AS retried_steps,
       coalesce(sum(s.duration_ms), 0)::bigint AS busy_ms,
       coalesce(sum(s.input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(s.output_tokens), 0)::bigint AS output_tokens,
       r.next_step,
       r.error ->> 'code' AS error_code,
       r.replay_of
FROM runs r
LEFT JOIN steps s ON s.run_id = r.id
GROUP BY r.id;
--> statement-breakpoint

-- One row per step, placed on its run's time line: when it started after the run was
-- created, and how long it waited before starting (queue, retries and backoff, a wait
-- for a signal) since the step before it finished.
CREATE VIEW "step_timeline" AS
SELECT s.run_id,
       r.function,
       s.seq,
       s.name,
       s.kind,
       s.status,
       s.attempt,
       s.started_at,
       s.finished_at,
       (extract(epoch FROM s.started_at - r.created_at) * 1000)::bigint AS start_offset_ms,
       (extract(epoch FROM s.started_at - coalesce(lag(s.finished_at) OVER w, r.created_at)) * 1000)::bigint AS waited_ms,
       s.duration_ms,
       s.worker,
       s.model,
       s.input_tokens,
       s.output_tokens,
       s.error ->> 'code' AS error_code
FROM steps s
JOIN runs r ON r.id = s.run_id
WINDOW w AS (PARTITION BY s.run_id ORDER BY s.seq);
--> statement-breakpoint

-- Per function and step, over the last day: how often it ran and how long it took.
CREATE VIEW "slow_steps" AS
SELECT r.function,
       s.name AS step,
       s.kind,
       count(*)::int AS executions,
       (count(*) FILTER (WHERE s.status = 'failed'))::int AS failed,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.duration_ms))::int AS p50_ms,
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY s.duration_ms))::int AS p95_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY s.duration_ms))::int AS p99_ms,
       max(s.duration_ms) AS max_ms
FROM steps s
JOIN runs r ON r.id = s.run_id
WHERE s.finished_at > now() - interval '1 day'
  AND s.duration_ms IS NOT NULL
GROUP BY r.function, s.name, s.kind;
--> statement-breakpoint

-- LLM tokens per function, model and day (UTC).
CREATE VIEW "token_usage_by_function" AS
SELECT r.function,
       s.model,
       (date_trunc('day', s.finished_at AT TIME ZONE 'UTC'))::date AS day,
       count(DISTINCT s.run_id)::int AS runs,
       count(*)::int AS llm_steps,
       coalesce(sum(s.input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(s.output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(s.input_tokens), 0)::bigint + coalesce(sum(s.output_tokens), 0)::bigint AS total_tokens
FROM steps s
JOIN runs r ON r.id = s.run_id
WHERE s.kind = 'llm'
  AND s.model IS NOT NULL
GROUP BY r.function, s.model, 3;
