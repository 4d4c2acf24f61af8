CREATE TABLE "step_calls" (
	"run_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"attempt" integer NOT NULL,
	"kind" "step_kind" NOT NULL,
	"request" jsonb NOT NULL,
	"response" jsonb,
	"error" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "step_calls_run_id_seq_attempt_pk" PRIMARY KEY("run_id","seq","attempt")
);
--> statement-breakpoint
ALTER TABLE "step_calls" ADD CONSTRAINT "step_calls_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;