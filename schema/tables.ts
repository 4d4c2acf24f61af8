/**
 * The database schema: the single source of row types. Every table and column is
 * documented in the README ("Inspect runs with SQL"); keep the two in step.
 * After a change: `npm run db:generate` writes the migration into schema/migrations.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** Run states. queued → running ⇄ waiting → succeeded | failed | cancelled (README diagram). */
export const RUN_STATUS = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUS)[number];
export const LIVE_RUN_STATUS = ['queued', 'running', 'waiting'] as const satisfies readonly RunStatus[];

/** A step row: `running` while an attempt is in flight, then `succeeded` or `failed` (last attempt's error kept). */
export const STEP_STATUS = ['running', 'succeeded', 'failed'] as const;
export type StepStatus = (typeof STEP_STATUS)[number];

/** What the step did: one LLM call, one tool call, a wait for a signal, or only computed. */
export const STEP_KIND = ['llm', 'tool', 'wait', 'compute'] as const;
export type StepKind = (typeof STEP_KIND)[number];

export const TOOL_DECISION = ['allowed', 'denied'] as const;
export type ToolDecision = (typeof TOOL_DECISION)[number];

export const runStatus = pgEnum('run_status', RUN_STATUS);
export const stepStatus = pgEnum('step_status', STEP_STATUS);
export const stepKind = pgEnum('step_kind', STEP_KIND);
export const toolDecision = pgEnum('tool_decision', TOOL_DECISION);

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey(),
    function: text('function').notNull(),
    tenant: text('tenant').notNull().default('default'),
    status: runStatus('status').notNull().default('queued'),
    input: jsonb('input').notNull(),
    output: jsonb('output'),
    error: jsonb('error'),
    /** The step that runs next, and its sequence number (0-based, contiguous). */
    nextStep: text('next_step'),
    nextSeq: integer('next_seq').notNull().default(0),
    /** Attempt number the next claim of next_seq will run as (1-based). */
    attempt: integer('attempt').notNull().default(1),
    /** The lease: which claim holds the run, until when. NULL when no step is in flight. */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: ts('lease_expires_at'),
    /** Not before: retry backoff, or a wait's timeout. */
    wakeAt: ts('wake_at'),
    /** The signal a waiting run waits for. */
    waitSignal: text('wait_signal'),
    idempotencyKey: text('idempotency_key'),
    /** Code revision that ran the first step (Knative mode pins later steps to it). */
    revision: text('revision'),
    /** The run this one replays, if any. */
    replayOf: uuid('replay_of'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
  },
  (t) => [
    index('runs_live_idx')
      .on(t.updatedAt)
      .where(sql`${t.status} in ('queued', 'running', 'waiting')`),
    index('runs_function_created_idx').on(t.function, t.createdAt),
    index('runs_tenant_created_idx').on(t.tenant, t.createdAt),
    uniqueIndex('runs_idempotency_key_idx').on(t.tenant, t.function, t.idempotencyKey),
  ],
);

export const steps = pgTable(
  'steps',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    name: text('name').notNull(),
    kind: stepKind('kind'),
    status: stepStatus('status').notNull(),
    attempt: integer('attempt').notNull(),
    /** What the step changed in the run's state: keys replaced, `{"$append": [...]}` appended. */
    patch: jsonb('patch'),
    /** Where the run went after this step: the next step's name, or NULL when it finished. */
    nextStep: text('next_step'),
    error: jsonb('error'),
    worker: text('worker'),
    model: text('model'),
    inputTokens: integer('input_tokens'),
    outputTokens: integer('output_tokens'),
    startedAt: ts('started_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
    durationMs: integer('duration_ms'),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] }), index('steps_status_finished_idx').on(t.status, t.finishedAt)],
);

/** Full state snapshots: every K steps and at the end. State for step N = last snapshot + later patches. */
export const checkpoints = pgTable(
  'checkpoints',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    state: jsonb('state').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] })],
);

/** A signal delivered to a waiting run; `seq` is the step that receives it. */
export const signals = pgTable(
  'signals',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    name: text('name').notNull(),
    payload: jsonb('payload'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] })],
);

/** Every tool call a step attempted, allowed or denied. Arguments are stored as a digest only. */
export const toolCalls = pgTable(
  'tool_calls',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    attempt: integer('attempt').notNull(),
    server: text('server').notNull(),
    tool: text('tool').notNull(),
    decision: toolDecision('decision').notNull(),
    reason: text('reason'),
    argsDigest: text('args_digest').notNull(),
    outcome: text('outcome'),
    error: text('error'),
    durationMs: integer('duration_ms'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('tool_calls_run_idx').on(t.runId, t.seq), index('tool_calls_decision_idx').on(t.decision, t.createdAt)],
);

/** API keys: only a SHA-256 hash of each key is kept. */
export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  tenant: text('tenant').notNull(),
  name: text('name'),
  hash: text('hash').notNull().unique(),
  createdAt: ts('created_at').notNull().defaultNow(),
  lastUsedAt: ts('last_used_at'),
  revokedAt: ts('revoked_at'),
});

export type Run = typeof runs.$inferSelect;
export type Step = typeof steps.$inferSelect;
export type ToolCall = typeof toolCalls.$inferInsert;
