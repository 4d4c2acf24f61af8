-- step_timeline learns fan-outs (README "Fan-out and join"): each row says which branch it is,
-- and waited_ms counts from what the step really waited on. A branch waits from its fan-out
-- step's end (its siblings run beside it, not before it); any other step, a join included,
-- from the latest end of the steps before it (a join: its slowest branch).
CREATE OR REPLACE VIEW "step_timeline" AS
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
       (extract(epoch FROM s.started_at - coalesce(
          CASE WHEN s.branch IS NOT NULL THEN f.finished_at ELSE max(s.finished_at) OVER w END,
          r.created_at)) * 1000)::bigint AS waited_ms,
       s.duration_ms,
       s.worker,
       s.model,
       s.input_tokens,
       s.output_tokens,
       s.error ->> 'code' AS error_code,
       s.branch,
       s.fanout_seq
FROM steps s
JOIN runs r ON r.id = s.run_id
LEFT JOIN steps f ON f.run_id = s.run_id AND f.seq = s.fanout_seq
WINDOW w AS (PARTITION BY s.run_id ORDER BY s.seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING);
