/**
 * Creating and reading runs (README: tables `runs`, `steps` and `step_attempts`).
 */
import { and, asc, between, desc, eq, lt, sql } from 'drizzle-orm';
import { type Run, type RunStatus, type Step, type StepAttempt, runs, stepAttempts, steps } from '../../schema/tables.ts';
import { type Db, query } from '../db/connect.ts';
import { summarizeStep } from '../agent/describe.ts';
import { insertRun } from './run-inserts.ts';
import { inSnapshot } from './snapshot.ts';

export interface NewRun {
  id: string;
  function: string;
  tenant: string;
  input: unknown;
  start: string;
  idempotencyKey?: string | undefined;
  replayOf?: string | undefined;
  /** W3C `traceparent` of the run's root span (README "Observability"). */
  traceContext?: string | null | undefined;
}

export type CreateRunResult =
  | { created: true; id: string }
  /** An earlier request used the same Idempotency-Key; `sameInput` says whether its input matched. */
  | { created: false; id: string; sameInput: boolean; status: RunStatus };

/**
 * Inserts the run. Safe to retry with the same `id`: when a first try committed but
 * its answer was lost (the connection dropped during a database restart), the retry
 * finds its own row and reports it created, rather than inserting a second run.
 */
export async function createRun(db: Db, r: NewRun): Promise<CreateRunResult> {
  const input = JSON.stringify(r.input);
  const inserted = await insertRun(db, {
    id: r.id,
    function: r.function,
    tenant: r.tenant,
    input,
    next_step: r.start,
    idempotency_key: r.idempotencyKey ?? null,
    replay_of: r.replayOf ?? null,
    trace_context: r.traceContext ?? null,
  });
  if (inserted) return { created: true, id: r.id };
  const [existing] = await query<{ id: string; same: boolean; status: RunStatus }>(
    db,
    sql`select id, input = ${input}::jsonb as same, status::text as status from runs
        where id = ${r.id}
           or (tenant = ${r.tenant} and function = ${r.function} and idempotency_key = ${r.idempotencyKey ?? null})
        order by (id = ${r.id}) desc limit 1`,
  );
  if (!existing) throw new Error('createRun: conflicting row vanished');
  if (existing.id === r.id) return { created: true, id: existing.id };
  return { created: false, id: existing.id, sameInput: existing.same, status: existing.status };
}

/** The run's trace, for a step whose wake-up did not carry it (a delayed or repaired one). */
export async function runTraceContext(db: Db, id: string): Promise<string | null> {
  const [row] = await query<{ trace_context: string | null }>(db, sql`select trace_context from runs where id = ${id}`);
  return row?.trace_context ?? null;
}

export interface RunWithSteps {
  run: Run;
  steps: Step[];
  /** Every attempt of every step, by seq then attempt. */
  attempts: StepAttempt[];
}

export async function getRun(db: Db, id: string): Promise<Run | null> {
  const [run] = await db.select().from(runs).where(eq(runs.id, id));
  return run ?? null;
}

/** A run with its steps and attempts, as of one instant (store/snapshot.ts). */
export function getRunWithSteps(db: Db, id: string): Promise<RunWithSteps | null> {
  return inSnapshot(db, async (t) => {
    const run = await getRun(t, id);
    if (!run) return null;
    const rows = await t.select().from(steps).where(eq(steps.runId, id)).orderBy(asc(steps.seq));
    const attempts = await t.select().from(stepAttempts).where(eq(stepAttempts.runId, id)).orderBy(asc(stepAttempts.seq), asc(stepAttempts.attempt));
    return { run, steps: rows, attempts };
  });
}

export interface ListRunsFilter {
  tenant?: string | undefined;
  function?: string | undefined;
  status?: RunStatus | undefined;
  /** Runs created before this one (cursor). */
  before?: Date | undefined;
  /** Runs listed after this run id: ordered by (created_at, id), so runs created in the same instant are not skipped. */
  afterRun?: string | undefined;
  /** Runs whose id lies in [from, to]: an id prefix, expanded by the caller (uses the primary key). */
  idRange?: readonly [string, string] | undefined;
  limit: number;
}

export async function listRuns(db: Db, f: ListRunsFilter): Promise<Run[]> {
  const where = and(
    f.tenant ? eq(runs.tenant, f.tenant) : undefined,
    f.function ? eq(runs.function, f.function) : undefined,
    f.status ? eq(runs.status, f.status) : undefined,
    f.before ? lt(runs.createdAt, f.before) : undefined,
    f.afterRun ? sql`(${runs.createdAt}, ${runs.id}) < (select r.created_at, r.id from runs r where r.id = ${f.afterRun})` : undefined,
    f.idRange ? between(runs.id, f.idRange[0], f.idRange[1]) : undefined,
  );
  return db.select().from(runs).where(where).orderBy(desc(runs.createdAt), desc(runs.id)).limit(f.limit);
}

/** The API's view of a run (GET /v1/runs/:id). */
export function runView(r: RunWithSteps) {
  const { run } = r;
  return {
    id: run.id,
    function: run.function,
    status: run.status,
    input: run.input,
    output: run.output,
    error: run.error,
    nextStep: run.nextStep,
    waitingFor: run.status === 'waiting' ? run.waitSignal : null,
    /** What the waiting step asks for (an agent's tool call awaiting approval: tool and arguments). */
    pending: run.status === 'waiting' ? (run.waitRequest ?? null) : null,
    usage: usageTotals(r.attempts),
    replayOf: run.replayOf,
    /** The run's OpenTelemetry trace id (README "Observability"), null when tracing was off. */
    traceId: run.traceContext?.split('-')[1] ?? null,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    finishedAt: run.finishedAt,
    steps: r.steps.map((s) => ({ ...stepView(s), attempts: r.attempts.filter((a) => a.seq === s.seq).map(attemptView) })),
  };
}

/**
 * Tokens and cost of a run, every attempt counted (a failed attempt was billed too).
 * `costUsd` is null when an attempt used a model without a price (runtime/llm/prices.ts).
 */
export function usageTotals(attempts: readonly StepAttempt[]) {
  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd: number | null = 0;
  let llmCalls = 0;
  for (const a of attempts) {
    if (!a.model) continue;
    llmCalls++;
    inputTokens += a.inputTokens ?? 0;
    outputTokens += a.outputTokens ?? 0;
    costUsd = costUsd === null || a.costUsd === null ? null : costUsd + Number(a.costUsd);
  }
  return { llmCalls, inputTokens, outputTokens, costUsd: costUsd === null ? null : Math.round(costUsd * 1e8) / 1e8 };
}

/** A step as its latest attempt left it. */
export function stepView(s: Step) {
  return {
    seq: s.seq,
    name: s.name,
    /** A fan-out's branch: its position 1..K and the fan-out step's seq (null for other steps). */
    branch: s.branch,
    fanoutSeq: s.fanoutSeq,
    kind: s.kind,
    status: s.status,
    attempt: s.attempt,
    durationMs: s.durationMs,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    nextStep: s.nextStep,
    error: s.error,
    usage: s.model ? { model: s.model, inputTokens: s.inputTokens, outputTokens: s.outputTokens, costUsd: s.costUsd } : null,
    /** What an agent step added to the conversation, in one line (runtime/agent/describe.ts); null otherwise. */
    summary: s.status === 'succeeded' ? summarizeStep(s.patch, s.output) : null,
  };
}

/** One attempt of a step (a `step_attempts` row). */
export function attemptView(a: StepAttempt) {
  return {
    attempt: a.attempt,
    status: a.status,
    worker: a.worker,
    durationMs: a.durationMs,
    startedAt: a.startedAt,
    finishedAt: a.finishedAt,
    error: a.error,
    usage: a.model ? { model: a.model, inputTokens: a.inputTokens, outputTokens: a.outputTokens, costUsd: a.costUsd } : null,
  };
}

/** A short summary for lists. */
export function runSummary(run: Run) {
  return {
    id: run.id,
    function: run.function,
    status: run.status,
    nextStep: run.nextStep,
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
  };
}
