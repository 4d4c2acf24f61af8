/**
 * What each attempt sent to its one external call and what came back (README: table
 * `step_calls`), for the run inspector and for SQL. Diagnostic data, not protocol
 * state: the row is written before the commit so a finished step always shows its
 * call, and a failure to write it is logged by the caller, never fails the step.
 *
 * Values are bounded (`boundJson`): a prompt with a 2 MB diff must not make every
 * attempt write 2 MB twice. Strings are cut to 16 KiB, lists to 200 items.
 */
import { and, asc, eq, sql } from 'drizzle-orm';
import { type StepKind, stepCalls } from '../../schema/tables.ts';
import type { Db } from '../db/connect.ts';

export interface StepCallRecord {
  kind: Extract<StepKind, 'llm' | 'tool'>;
  request: unknown;
  response?: unknown;
  error?: unknown;
}

const MAX_STRING = 16 * 1024;
const MAX_ITEMS = 200;
const MAX_DEPTH = 12;

/** A JSON-safe copy of `value` with long strings and lists cut, saying how much was left out. */
export function boundJson(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') {
    return value.length <= MAX_STRING ? value : `${value.slice(0, MAX_STRING)}… [${value.length - MAX_STRING} more characters]`;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return null;
  if (depth >= MAX_DEPTH) return '[nested too deep]';
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => boundJson(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`… [${value.length - MAX_ITEMS} more items]`);
    return items;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || typeof v === 'function') continue;
    out[k] = boundJson(v, depth + 1);
  }
  return out;
}

/** Writes (or, for a claim that took over a dead worker's attempt, replaces) an attempt's call. */
export async function recordStepCall(db: Db, where: { runId: string; seq: number; attempt: number }, call: StepCallRecord): Promise<void> {
  const row = {
    runId: where.runId,
    seq: where.seq,
    attempt: where.attempt,
    kind: call.kind,
    request: boundJson(call.request) ?? {},
    response: call.response === undefined ? null : boundJson(call.response),
    error: call.error === undefined ? null : boundJson(call.error),
  };
  await db
    .insert(stepCalls)
    .values(row)
    .onConflictDoUpdate({
      target: [stepCalls.runId, stepCalls.seq, stepCalls.attempt],
      set: { kind: row.kind, request: row.request, response: row.response, error: row.error, createdAt: sql`now()` },
    });
}

/** Every recorded call of one step, by attempt. */
export async function stepCallsOf(db: Db, runId: string, seq: number) {
  return db
    .select()
    .from(stepCalls)
    .where(and(eq(stepCalls.runId, runId), eq(stepCalls.seq, seq)))
    .orderBy(asc(stepCalls.attempt));
}
