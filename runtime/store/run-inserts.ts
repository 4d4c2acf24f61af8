/**
 * New runs are inserted in batches: the POSTs that arrive in the same turn of the event
 * loop, or while earlier inserts are under way, go to PostgreSQL together, as one
 * multi-row INSERT (one statement, one WAL flush), instead of one round trip and one
 * commit each. Nothing waits for a timer: a batch is sent at the end of the turn in
 * which its first row arrived (`setImmediate`) when no insert is under way, else as
 * soon as the one under way finishes. An idle API still sends a lone POST's insert at
 * once; under load the batches grow, which raises what one API process accepts per
 * second and cuts its tail latency. An insert under way for longer than STALLED_MS
 * (a lock wait, a connection that stopped answering) no longer holds the others back:
 * up to MAX_IN_FLIGHT go beside it.
 *
 * Every run keeps its own answer: a row that conflicts (an Idempotency-Key used
 * before, or a retried insert whose first try committed) is looked up on its own, as
 * before; a batch the database refuses for a reason other than an outage (one bad
 * row) is sent again row by row, so only that request fails.
 */
import { sql } from 'drizzle-orm';
import { type Db, hotStatement, queryPrepared } from '../db/connect.ts';
import { batcherPerDb } from '../db/batcher.ts';

export interface RunRow {
  id: string;
  function: string;
  tenant: string;
  /** The input, as JSON text. */
  input: string;
  next_step: string;
  idempotency_key: string | null;
  replay_of: string | null;
  /** W3C trace context of the request that created the run (OpenTelemetry). */
  trace_context: string | null;
}

/**
 * One insert under way per database handle; the rows that arrive meanwhile go as the next
 * batch. At 50 connections that makes batches of 20 runs instead of 12 with four under
 * way, and 5–12% more accepted runs per second (bench/README.md, the eighth round).
 */
const IN_FLIGHT = 1;
const STALLED_MS = 20;
const MAX_IN_FLIGHT = 4;
const MAX_BATCH = 500;

const inserts = batcherPerDb<Db, RunRow, boolean>((db) => ({
  inFlight: IN_FLIGHT,
  stalledAfterMs: STALLED_MS,
  maxInFlight: MAX_IN_FLIGHT,
  maxBatch: MAX_BATCH,
  // The other requests read from the same poll join the row (db/batcher.ts).
  sameTurn: true,
  sendOne: (r) => insertOne(db, r),
  sendMany: async (rows) => {
    const inserted = await insertMany(db, rows);
    return rows.map((r) => inserted === null || inserted.has(r.id));
  },
}));

/** Inserts the run unless it conflicts; true when this call inserted it. */
export function insertRun(db: Db, row: RunRow): Promise<boolean> {
  return inserts(db, row);
}

async function insertOne(db: Db, r: RunRow): Promise<boolean> {
  const rows = await queryPrepared<{ id: string }>(
    db,
    // A new name with each new column: a server connection may still hold the old text under the old one.
    'baton_run_insert_traced',
    sql`insert into runs (id, function, tenant, input, next_step, idempotency_key, replay_of, trace_context)
        values (${r.id}, ${r.function}, ${r.tenant}, ${r.input}::jsonb, ${r.next_step}, ${r.idempotency_key}, ${r.replay_of}, ${r.trace_context})
        on conflict do nothing
        returning id`,
  );
  return rows.length > 0;
}

/**
 * The batch as one hot statement (its text built once) that answers with one row: null
 * when every run was inserted (the usual case), else the ids it inserted. Reading back
 * one id per run cost the API about 2 µs per run (a batch of 16: 190 → 160 µs of CPU).
 */
const insertBatch = hotStatement<{ rows: string; count: number }>(
  'baton_run_insert_many',
  (v) => sql`with inserted as (
        insert into runs (id, function, tenant, input, next_step, idempotency_key, replay_of, trace_context)
        select r.id, r.function, r.tenant, r.input::jsonb, r.next_step, r.idempotency_key, r.replay_of, r.trace_context
        from jsonb_to_recordset(${v.rows}::jsonb)
          as r(id uuid, function text, tenant text, input text, next_step text, idempotency_key text, replay_of uuid, trace_context text)
        on conflict do nothing
        returning id)
      select case when count(*) = ${v.count}::int then null else coalesce(array_agg(id::text), '{}') end as ids from inserted`,
);

/** The ids inserted, or null when all were. */
async function insertMany(db: Db, rows: RunRow[]): Promise<Set<string> | null> {
  // Rows that can conflict (an Idempotency-Key) in one order in every batch: two batches
  // inserting the same keys at once then wait on each other in turn, never in a cycle.
  const ordered = rows.toSorted(byKey);
  // The inputs travel as JSON text inside the batch's JSON, so each is stored exactly as one insert would store it.
  const [answer] = await insertBatch<{ ids: string[] | null }>(db, { rows: JSON.stringify(ordered), count: ordered.length });
  return answer.ids === null ? null : new Set(answer.ids);
}

function byKey(a: RunRow, b: RunRow): number {
  const ka = `${a.tenant}\u0000${a.function}\u0000${a.idempotency_key ?? ''}`;
  const kb = `${b.tenant}\u0000${b.function}\u0000${b.idempotency_key ?? ''}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
