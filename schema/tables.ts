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
  numeric,
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

/**
 * A step row: `running` while an attempt is in flight, then `succeeded` or `failed` (last attempt's
 * error kept). A fan-out's branch rows start `queued` (written by the fan-out's commit) and go back
 * to `queued` while a retry's backoff runs.
 */
export const STEP_STATUS = ['queued', 'running', 'succeeded', 'failed'] as const;
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
    /** Attempt number the next claim of next_seq will run as (1-based; POST /retry continues the count). */
    attempt: integer('attempt').notNull().default(1),
    /** Attempts of the step at next_seq made before the last POST /retry: it may run maxAttempts more. */
    attemptBase: integer('attempt_base').notNull().default(0),
    /**
     * Claims of the step at next_seq since its last commit or failure record. Each claim
     * whose worker died adds one; past BATON_MAX_CLAIMS the run fails `crash_loop`.
     */
    claims: integer('claims').notNull().default(0),
    /** The lease: which claim holds the run, until when. NULL when no step is in flight. */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: ts('lease_expires_at'),
    /** Not before: retry backoff, or a wait's timeout. */
    wakeAt: ts('wake_at'),
    /** The signal a waiting run waits for. */
    waitSignal: text('wait_signal'),
    /**
     * What the waiting step asks for, shown by GET /v1/runs/:id while the run waits (an
     * agent's tool call awaiting approval: `{ "kind": "approval", "tool", "args", … }`).
     */
    waitRequest: jsonb('wait_request'),
    /**
     * What the step at next_seq resumes with, `{ name, payload, timedOut }`: written when a
     * signal is consumed or the wait times out, kept for every attempt of that step. It
     * lives on the run row so a claim, which locks that row, always sees it.
     */
    signal: jsonb('signal'),
    /** Signals in the inbox (delivered before the run waited for them), not yet consumed. */
    inbox: integer('inbox').notNull().default(0),
    /**
     * Branches of the fan-out before next_seq (its join) that have not finished yet. The join is
     * claimable only at 0; each branch's commit decrements it in its fenced statement.
     */
    branches: integer('branches').notNull().default(0),
    /** What a branch failing after its attempts does: `fail` the run, or `continue` (the join sees it). */
    branchFailure: text('branch_failure'),
    idempotencyKey: text('idempotency_key'),
    /** Code revision that ran the first step (Knative mode pins later steps to it). */
    revision: text('revision'),
    /** The run this one replays, if any. */
    replayOf: uuid('replay_of'),
    /**
     * The run's trace (W3C `traceparent` of its root span, made when the API created the
     * run): every step attempt, in any process and after any crash, continues it.
     * NULL when tracing was off at the API (README "Observability").
     */
    traceContext: text('trace_context'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
  },
  (t) => [
    // Live runs for the sweeper. Not on updated_at: every step writes it, and an indexed
    // column that changes makes each update of the run a non-HOT one (a new entry in every
    // index of the table); created_at never changes, so per-step updates stay HOT.
    index('runs_live_idx')
      .on(t.createdAt)
      .where(sql`${t.status} in ('queued', 'running', 'waiting')`),
    index('runs_function_created_idx').on(t.function, t.createdAt),
    index('runs_tenant_created_idx').on(t.tenant, t.createdAt),
    uniqueIndex('runs_idempotency_key_idx').on(t.tenant, t.function, t.idempotencyKey),
  ],
);

/** What an attempt of a step left: `step_attempts` has one per attempt, `steps` the latest one's. */
const attemptRecord = () => ({
  error: jsonb('error'),
  worker: text('worker'),
  model: text('model'),
  inputTokens: integer('input_tokens'),
  outputTokens: integer('output_tokens'),
  /** What the LLM call cost in US dollars (README "Cost"); NULL for other steps and for unpriced models. */
  costUsd: numeric('cost_usd', { precision: 14, scale: 8, mode: 'number' }),
  startedAt: ts('started_at').notNull().defaultNow(),
  finishedAt: ts('finished_at'),
  durationMs: integer('duration_ms'),
});

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
    /** A fan-out's branch (README "Fan-out and join"): its position 1..K, and the fan-out step's seq. */
    branch: integer('branch'),
    fanoutSeq: integer('fanout_seq'),
    /** A branch's input (parallel's `input`) and its result (the branch's `done` output). */
    input: jsonb('input'),
    output: jsonb('output'),
    /**
     * A branch is claimed on its own row (the run row holds no lease during a fan-out): the lease,
     * claims that never reached a commit, the retry's backoff and the attempts before a POST /retry.
     * NULL (0) for other steps, whose claim state lives on the run row.
     */
    leaseOwner: text('lease_owner'),
    leaseExpiresAt: ts('lease_expires_at'),
    claims: integer('claims').notNull().default(0),
    wakeAt: ts('wake_at'),
    attemptBase: integer('attempt_base').notNull().default(0),
    ...attemptRecord(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq] }), index('steps_status_finished_idx').on(t.status, t.finishedAt)],
);

/**
 * Every attempt of every step (README "Inspect runs with SQL"): written by the claim
 * (running) and by the commit or failure record (succeeded, failed) under the same
 * lease fence, in the same statements; a step claimed in process by the commit before
 * it opens its rows at its outside call or after 20 ms (store/step-rows.ts), or gets
 * them with its result. `steps` shows the latest attempt of each step.
 */
export const stepAttempts = pgTable(
  'step_attempts',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    attempt: integer('attempt').notNull(),
    status: stepStatus('status').notNull(),
    ...attemptRecord(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq, t.attempt] }), index('step_attempts_status_finished_idx').on(t.status, t.finishedAt)],
);

/**
 * What an attempt sent to its one external call and what came back (README "Inspect runs
 * with SQL"): the LLM's prompt and answer, or the tool's arguments and result. Written by
 * the worker after the call returns, before the commit; long strings are cut (runtime/store/step-calls.ts).
 * Only steps that made a call have a row, so no-op steps pay nothing for it.
 */
export const stepCalls = pgTable(
  'step_calls',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    attempt: integer('attempt').notNull(),
    kind: stepKind('kind').notNull(),
    /** `llm`: model, instructions, prompt or messages, tool names. `tool`: name and arguments. */
    request: jsonb('request').notNull(),
    /** `llm`: text, tool calls, finish reason, usage. `tool`: the result. NULL when the call failed. */
    response: jsonb('response'),
    error: jsonb('error'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.seq, t.attempt] })],
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

/**
 * Every signal delivered to a run, in arrival order (`id`). `seq` is the step that
 * received it; NULL while it waits in the inbox for a step that waits for its name.
 */
export const signals = pgTable(
  'signals',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq'),
    name: text('name').notNull(),
    payload: jsonb('payload'),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    // A step receives at most one signal.
    uniqueIndex('signals_received_idx')
      .on(t.runId, t.seq)
      .where(sql`${t.seq} is not null`),
    index('signals_inbox_idx')
      .on(t.runId, t.name, t.id)
      .where(sql`${t.seq} is null`),
  ],
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
export type StepAttempt = typeof stepAttempts.$inferSelect;
export type Signal = typeof signals.$inferSelect;
export type StepCall = typeof stepCalls.$inferSelect;
export type ToolCall = typeof toolCalls.$inferInsert;
