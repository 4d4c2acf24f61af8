-- What drizzle-kit cannot express for 0002_engine_edges (README "Inspect runs with SQL").

-- The attempts steps recorded before step_attempts existed (the latest of each step), and no stale
-- error on a step that succeeded.
INSERT INTO "step_attempts" ("run_id", "seq", "attempt", "status", "error", "worker", "model", "input_tokens", "output_tokens", "started_at", "finished_at", "duration_ms")
SELECT "run_id", "seq", "attempt", "status", CASE WHEN "status" = 'succeeded' THEN NULL ELSE "error" END,
       "worker", "model", "input_tokens", "output_tokens", "started_at", "finished_at", "duration_ms"
FROM "steps"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
UPDATE "steps" SET "error" = NULL WHERE "status" = 'succeeded' AND "error" IS NOT NULL;
--> statement-breakpoint

-- The signal a live run's next step resumes with now lives on the run row.
UPDATE "runs" r SET "signal" = jsonb_build_object('name', g."name", 'payload', g."payload", 'timedOut', false)
FROM "signals" g
WHERE g."run_id" = r."id" AND g."seq" = r."next_seq" AND r."status" IN ('queued', 'running', 'waiting');
--> statement-breakpoint

-- What a run cost counts every attempt (a failed attempt was billed too), and every attempt counts.
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
       r.replay_of
FROM runs r
LEFT JOIN LATERAL (
  SELECT count(*) AS steps, count(*) FILTER (WHERE attempt > 1) AS retried_steps, sum(duration_ms) AS busy_ms
  FROM steps WHERE run_id = r.id
) s ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS attempts, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
  FROM step_attempts WHERE run_id = r.id
) a ON true;
--> statement-breakpoint

-- LLM tokens per function, model and day (UTC), every attempt counted; llm_calls (added last) counts
-- the billed calls, llm_steps the steps that made them.
CREATE OR REPLACE VIEW "token_usage_by_function" AS
SELECT r.function,
       a.model,
       (date_trunc('day', a.finished_at AT TIME ZONE 'UTC'))::date AS day,
       count(DISTINCT a.run_id)::int AS runs,
       count(DISTINCT (a.run_id, a.seq))::int AS llm_steps,
       coalesce(sum(a.input_tokens), 0)::bigint AS input_tokens,
       coalesce(sum(a.output_tokens), 0)::bigint AS output_tokens,
       coalesce(sum(a.input_tokens), 0)::bigint + coalesce(sum(a.output_tokens), 0)::bigint AS total_tokens,
       count(*)::int AS llm_calls
FROM step_attempts a
JOIN runs r ON r.id = a.run_id
WHERE a.model IS NOT NULL
GROUP BY r.function, a.model, 3;
