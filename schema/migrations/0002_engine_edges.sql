CREATE TABLE "step_attempts" (
	"run_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"attempt" integer NOT NULL,
	"status" "step_status" NOT NULL,
	"error" jsonb,
	"worker" text,
	"model" text,
	"input_tokens" integer,
	"output_tokens" integer,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"duration_ms" integer,
	CONSTRAINT "step_attempts_run_id_seq_attempt_pk" PRIMARY KEY("run_id","seq","attempt")
);
--> statement-breakpoint
ALTER TABLE "signals" DROP CONSTRAINT "signals_run_id_seq_pk";--> statement-breakpoint
ALTER TABLE "signals" ALTER COLUMN "seq" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "attempt_base" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "claims" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "signal" jsonb;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "inbox" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "signals" ADD COLUMN "id" bigint PRIMARY KEY NOT NULL GENERATED ALWAYS AS IDENTITY (sequence name "signals_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1);--> statement-breakpoint
ALTER TABLE "step_attempts" ADD CONSTRAINT "step_attempts_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "step_attempts_status_finished_idx" ON "step_attempts" USING btree ("status","finished_at");--> statement-breakpoint
CREATE UNIQUE INDEX "signals_received_idx" ON "signals" USING btree ("run_id","seq") WHERE "signals"."seq" is not null;--> statement-breakpoint
CREATE INDEX "signals_inbox_idx" ON "signals" USING btree ("run_id","name","id") WHERE "signals"."seq" is null;