ALTER TABLE "runs" ADD COLUMN "wait_request" jsonb;--> statement-breakpoint
ALTER TABLE "step_attempts" ADD COLUMN "cost_usd" numeric(14, 8);--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "cost_usd" numeric(14, 8);