/**
 * Everything about one step, for `GET /v1/runs/:id/steps/:seq` and the run inspector:
 * the step row (with its patch), every attempt with its recorded call, the state the
 * step saw (rebuilt as the claim does: last snapshot before it plus the patches
 * after), the signal it received, and the tool calls it made (README: tables `steps`,
 * `step_attempts`, `step_calls`, `checkpoints`, `signals`, `tool_calls`).
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import { type Step, type StepAttempt, type StepCall, signals, stepAttempts, steps, toolCalls } from '../../schema/tables.ts';
import { type Db, query } from '../db/connect.ts';
import { type Patch, type State, replay } from '../state.ts';
import { inSnapshot } from './snapshot.ts';
import { stepCallsOf } from './step-calls.ts';

export interface StepDetail {
  step: Step;
  attempts: StepAttempt[];
  calls: StepCall[];
  stateBefore: State;
  signal: { name: string; payload: unknown; createdAt: Date } | null;
  toolCalls: Array<typeof toolCalls.$inferSelect>;
}

/** The state step `seq` saw when it ran: the last snapshot before it plus the patches after that. */
export async function stateBefore(db: Db, runId: string, seq: number): Promise<State> {
  const [row] = await query<{ snapshot: State | null; patches: Array<Patch | null> }>(
    db,
    sql`with snap as (
          select seq, state from checkpoints where run_id = ${runId} and seq < ${seq} order by seq desc limit 1
        )
        select (select state from snap) as snapshot,
          (select coalesce(jsonb_agg(s.patch order by s.seq), '[]'::jsonb) from steps s
            where s.run_id = ${runId} and s.seq < ${seq} and s.seq > coalesce((select seq from snap), -1)) as patches`,
  );
  return replay(row?.snapshot ?? null, row?.patches ?? []);
}

/** A step as of one instant (store/snapshot.ts): its row, attempts and calls agree. */
export function getStepDetail(db: Db, runId: string, seq: number): Promise<StepDetail | null> {
  return inSnapshot(db, async (t) => {
    const [step] = await t.select().from(steps).where(and(eq(steps.runId, runId), eq(steps.seq, seq)));
    if (!step) return null;
    // One connection: these run one after another.
    const attempts = await t.select().from(stepAttempts).where(and(eq(stepAttempts.runId, runId), eq(stepAttempts.seq, seq))).orderBy(asc(stepAttempts.attempt));
    const calls = await stepCallsOf(t, runId, seq);
    const state = await stateBefore(t, runId, seq);
    const received = await t.select({ name: signals.name, payload: signals.payload, createdAt: signals.createdAt }).from(signals).where(and(eq(signals.runId, runId), eq(signals.seq, seq)));
    const tools = await t.select().from(toolCalls).where(and(eq(toolCalls.runId, runId), eq(toolCalls.seq, seq))).orderBy(asc(toolCalls.id));
    return { step, attempts, calls, stateBefore: state, signal: received[0] ?? null, toolCalls: tools };
  });
}

/** The API's view of a step's detail. */
export function stepDetailView(runId: string, d: StepDetail) {
  const s = d.step;
  const callOf = (attempt: number) => d.calls.find((c) => c.attempt === attempt) ?? null;
  // A step recorded before attempts had rows of their own stands for its one attempt.
  const attempts: Array<StepAttempt | Step> = d.attempts.length > 0 ? d.attempts : [s];
  return {
    runId,
    seq: s.seq,
    name: s.name,
    kind: s.kind,
    status: s.status,
    attempt: s.attempt,
    nextStep: s.nextStep,
    error: s.error,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    durationMs: s.durationMs,
    usage: s.model ? { model: s.model, inputTokens: s.inputTokens, outputTokens: s.outputTokens, costUsd: s.costUsd } : null,
    patch: s.patch,
    /** A fan-out's branch: its position, the fan-out step, its input and its done() output. */
    branch: s.branch === null ? null : { index: s.branch, fanoutSeq: s.fanoutSeq, input: s.input, output: s.output },
    stateBefore: d.stateBefore,
    signal: d.signal,
    attempts: attempts.map((a) => {
      const call = callOf(a.attempt);
      return {
        attempt: a.attempt,
        status: a.status,
        worker: a.worker,
        startedAt: a.startedAt,
        finishedAt: a.finishedAt,
        durationMs: a.durationMs,
        error: a.error,
        usage: a.model ? { model: a.model, inputTokens: a.inputTokens, outputTokens: a.outputTokens, costUsd: a.costUsd } : null,
        call: call ? { kind: call.kind, request: call.request, response: call.response, error: call.error } : null,
      };
    }),
    toolCalls: d.toolCalls.map((t) => ({
      attempt: t.attempt,
      server: t.server,
      tool: t.tool,
      decision: t.decision,
      reason: t.reason,
      argsDigest: t.argsDigest,
      outcome: t.outcome,
      error: t.error,
      durationMs: t.durationMs,
      createdAt: t.createdAt,
    })),
  };
}

export type StepDetailView = ReturnType<typeof stepDetailView>;
