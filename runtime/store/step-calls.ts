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
import { type Db, queryPrepared } from '../db/connect.ts';
import { isTransientDbError } from '../db/sqlstate.ts';

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

type StepCallRow = typeof stepCalls.$inferInsert;

/** At most this many rows per statement (each value may be 16 KiB of text). */
const BATCH = 100;

function rowOf(where: { runId: string; seq: number; attempt: number }, call: StepCallRecord): StepCallRow {
  return {
    runId: where.runId,
    seq: where.seq,
    attempt: where.attempt,
    kind: call.kind,
    request: boundJson(call.request) ?? {},
    response: call.response === undefined ? null : boundJson(call.response),
    error: call.error === undefined ? null : boundJson(call.error),
  };
}

/**
 * Insert, or, for a claim that took over a dead worker's attempt, replace the attempt's call.
 * The rows go as one JSON parameter of a prepared statement: built by the query builder, a
 * hundred rows of seven values cost the worker about 30 µs a row to build.
 */
async function upsert(db: Db, rows: StepCallRow[]): Promise<void> {
  await queryPrepared(
    db,
    'baton_step_calls_upsert',
    sql`insert into step_calls (run_id, seq, attempt, kind, request, response, error)
        select "runId", seq, attempt, kind, request, response, error
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          as r("runId" uuid, seq int, attempt int, kind step_kind, request jsonb, response jsonb, error jsonb)
        on conflict (run_id, seq, attempt) do update set
          kind = excluded.kind, request = excluded.request, response = excluded.response, error = excluded.error, created_at = now()`,
  );
}

interface Pending {
  row: StepCallRow;
  done: (err?: unknown) => void;
}

/**
 * Rows waiting for the next statement, per database. A worker finishing a thousand model
 * calls at once writes their rows in a few statements instead of a thousand: each call
 * waits for the statement that carries its row (still before its commit), and while one
 * statement runs the next calls gather for the one after it.
 */
interface Writer {
  queue: Pending[];
  writing: boolean;
}

const writers = new WeakMap<Db, Writer>();

async function drain(db: Db, w: Writer): Promise<void> {
  w.writing = true;
  try {
    while (w.queue.length > 0) {
      const batch = w.queue.splice(0, BATCH);
      // One row per attempt in a statement (ON CONFLICT cannot touch a row twice): the latest wins.
      const byAttempt = new Map(batch.map((b) => [`${b.row.runId}|${b.row.seq}|${b.row.attempt}`, b.row]));
      try {
        await upsert(db, [...byAttempt.values()]);
        for (const b of batch) b.done();
      } catch (err) {
        if (batch.length === 1 || isTransientDbError(err)) {
          for (const b of batch) b.done(err);
          continue;
        }
        // One row the database refuses must not cost the others theirs: one by one, then.
        for (const b of batch) await upsert(db, [b.row]).then(() => b.done(), b.done);
      }
    }
  } finally {
    w.writing = false;
  }
}

/** Writes an attempt's call (replacing the one a dead worker's claim of the attempt wrote); resolves once it is stored. */
export function recordStepCall(db: Db, where: { runId: string; seq: number; attempt: number }, call: StepCallRecord): Promise<void> {
  let w = writers.get(db);
  if (!w) writers.set(db, (w = { queue: [], writing: false }));
  const writer = w;
  return new Promise<void>((resolve, reject) => {
    writer.queue.push({ row: rowOf(where, call), done: (err) => (err === undefined ? resolve() : reject(err)) });
    // The calls of this turn of the event loop gather before the first statement goes.
    if (!writer.writing) {
      writer.writing = true;
      setImmediate(() => void drain(db, writer));
    }
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
