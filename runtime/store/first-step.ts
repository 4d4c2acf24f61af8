/**
 * A run's first step, read without a claim (engine/execute-step.ts "a quick first step").
 *
 * A fresh run's first wake-up finds the run queued at seq 0 with nothing to replay: no
 * lease, no claim yet, no signal, no backoff. Its step may then run on a plain read (no
 * row lock, no write, no WAL flush) and be claimed by its commit, which writes nothing
 * unless the run is still exactly so (store/continue.ts, the `unclaimed` fence). A step
 * that makes an outside call, runs a while or ends other than by handing on or finishing
 * is claimed the usual way first (store/claim.ts), so no side effect ever runs unleased.
 */
import { type SQL, sql } from 'drizzle-orm';
import { batcherPerDb } from '../db/batcher.ts';
import { type Db, queryPrepared } from '../db/connect.ts';
import { type ClaimRow, type ClaimedStep, claimedStepOf } from './claim.ts';

export interface FirstStepInput {
  runId: string;
  /** The function the message is for: a run of another function is not read. */
  function: string;
}

/** A fresh run (over `runs r`): queued, no lease, no claim yet, no backoff, no retry, no fan-out, no signal. */
const FRESH = sql`r.status = 'queued' and r.lease_owner is null and r.wake_at is null and r.claims = 0
  and r.attempt = 1 and r.attempt_base = 0 and r.branches = 0 and r.signal is null`;

/**
 * First steps read while earlier reads are under way go together, as one statement (a burst of
 * new runs is read in a few statements, as claims are, store/claim.ts).
 */
const reads = batcherPerDb<Db, FirstStepInput, ClaimedStep | null>((db) => ({
  inFlight: 4,
  maxBatch: 200,
  sendOne: async (one) => (await readMany(db, [one])).get(one.runId) ?? null,
  sendMany: async (many) => {
    const found = await readMany(db, many);
    return many.map((m) => found.get(m.runId) ?? null);
  },
}));

/** The run's first step as a claim would load it, or null when the run is not a fresh run at seq 0 (then claim it). */
export function readFirstStep(db: Db, c: FirstStepInput): Promise<ClaimedStep | null> {
  return reads(db, c);
}

async function readMany(db: Db, batch: readonly FirstStepInput[]): Promise<Map<string, ClaimedStep>> {
  // The claim's row shape, with what a fresh run at seq 0 has: no signal, no snapshot, no patches, no fan-out.
  const rows = await queryPrepared<ClaimRow>(
    db,
    'baton_read_first_steps',
    sql`select r.id, r.function, r.tenant, r.input, r.next_step, r.attempt, r.attempt_base, r.revision, r.signal,
          null::jsonb as crash_loop, r.next_seq as seq, null::jsonb as snapshot, '[]'::jsonb as patches, null::jsonb as branches
        from runs r join jsonb_to_recordset(${JSON.stringify(batch.map((c) => ({ run_id: c.runId, function: c.function })))}::jsonb)
          as i(run_id uuid, function text) on r.id = i.run_id and r.function = i.function
        where r.next_seq = 0 and ${FRESH}`,
  );
  return new Map(rows.map((row) => [row.id, claimedStepOf(row)]));
}

/**
 * The commit's side of it: the run (`runs r`, locked) is still a fresh run running `step`
 * (store/continue.ts and continue-one.ts; its seq is checked there).
 */
export const stillUnclaimed = (step: SQL): SQL => sql`${FRESH} and r.next_step = ${step}`;
