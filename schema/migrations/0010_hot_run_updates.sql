DROP INDEX "runs_live_idx";--> statement-breakpoint
CREATE INDEX "runs_live_idx" ON "runs" USING btree ("created_at") WHERE "runs"."status" in ('queued', 'running', 'waiting');--> statement-breakpoint
-- Room on each page for the new versions of a run's row: every step updates it twice,
-- and a HOT update must find space on the same page.
ALTER TABLE "runs" SET (fillfactor = 70);
