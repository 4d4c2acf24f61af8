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
import { type Db, hotStatement, queryPrepared } from '../db/connect.ts';
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
 * new runs is read in a few statements, as claims are, store/claim.ts). A read alone (a run
 * alone, an idle worker) goes as the statement for one run, by its key with plain parameters:
 * 0.33–0.36 against 0.45–0.48 ms for the batch statement carrying one run (medians of 2,000,
 * alternated on one connection).
 */
const reads = batcherPerDb<Db, FirstStepInput, ClaimedStep | null>((db) => ({
  inFlight: 4,
  maxBatch: 200,
  sendOne: (one) => readFirstStepAlone(db, one),
  sendMany: async (many) => {
    const found = await readFirstSteps(db, many);
    return many.map((m) => found.get(m.runId) ?? null);
  },
}));

/** The run's first step as a claim would load it, or null when the run is not a fresh run at seq 0 (then claim it). */
export function readFirstStep(db: Db, c: FirstStepInput): Promise<ClaimedStep | null> {
  return reads(db, c);
}

// The claim's row shape, with what a fresh run at seq 0 has: no signal, no snapshot, no patches, no fan-out.
const COLUMNS = sql`r.id, r.function, r.tenant, r.input, r.next_step, r.attempt, r.attempt_base, r.revision, r.signal,
  null::jsonb as crash_loop, r.next_seq as seq, null::jsonb as snapshot, '[]'::jsonb as patches, null::jsonb as branches`;

const alone = hotStatement<{ runId: string; function: string }>(
  'baton_read_first_step',
  (v) => sql`select ${COLUMNS} from runs r where r.id = ${v.runId} and r.function = ${v.function} and r.next_seq = 0 and ${FRESH}`,
);

/** One run's first step (the statement for a read alone), or null when it is not a fresh run at seq 0. */
export async function readFirstStepAlone(db: Db, c: FirstStepInput): Promise<ClaimedStep | null> {
  const [row] = await alone<ClaimRow>(db, { runId: c.runId, function: c.function });
  return row ? claimedStepOf(row) : null;
}

/** Many runs' first steps in one statement, by run id (those that are fresh runs at seq 0). */
export async function readFirstSteps(db: Db, batch: readonly FirstStepInput[]): Promise<Map<string, ClaimedStep>> {
  const rows = await queryPrepared<ClaimRow>(
    db,
    'baton_read_first_steps',
    sql`select ${COLUMNS}
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
