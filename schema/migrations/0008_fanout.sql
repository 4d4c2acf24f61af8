ALTER TYPE "public"."step_status" ADD VALUE 'queued' BEFORE 'running';--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "branches" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "branch_failure" text;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "branch" integer;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "fanout_seq" integer;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "input" jsonb;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "output" jsonb;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "lease_owner" text;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "lease_expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "claims" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "wake_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "steps" ADD COLUMN "attempt_base" integer DEFAULT 0 NOT NULL;