/**
 * Step protocol, parts 4 and 1 at once: commit step N and claim step N+1 for the same
 * worker, in one statement, when the step handed on to a next step that this process
 * will run at once (engine/execute-step.ts "continue in process"). One write
 * transaction and one round trip instead of two of each, and no trip through Redis.
 *
 * The commit is the ordinary one (store/commit.ts), fenced by the same lease; the
 * claim is what `claimStep` would do for step N+1 just after it, with a fresh lease
 * owner: the run stays `running`, leased to the new owner, its claim count at 1 (a
 * claim that never reaches a commit still counts towards a crash loop). The step and
 * attempt rows of N+1 are not opened here: they come with its result, or earlier if it
 * makes an outside call or runs a while (store/step-rows.ts). The fence failing writes nothing.
 *
 * A run's last step (done) commits through the same statement, so the ends of runs finishing
 * together are batched with the chains still going (`commitDone`).
 *
 * Nothing is lost if the process dies afterwards: the message that ran step N stays
 * pending in its stream, touched while the worker's leases beat; once the lease of
 * N+1 has run out, that message is reclaimed, its claim finds the run past N and idle,
 * and step N+1 is re-published (the repair of a crash between commit and hand-on).
 */
import { sql } from 'drizzle-orm';
import { batcherPerDb } from '../db/batcher.ts';
import { type Db, queryPrepared } from '../db/connect.ts';
import type { State } from '../state.ts';
import type { StepResultWrite, StepRows } from './commit.ts';
import { commitAndClaimOne } from './continue-one.ts';
import { stillUnclaimed } from './first-step.ts';
import { succeededRows } from './step-sql.ts';

/**
 * A fresh run's first step that ran without a claim (store/first-step.ts): its commit claims
 * it too, fenced on the run being still as the read found it, instead of on a lease.
 */
export interface UnclaimedStep {
  unclaimed?: {
    /** The code revision of this process, recorded on the run as its first claim would. */
    revision: string | null;
    /** How long ago the step started: its rows' `started_at` is this long before the commit. */
    elapsedMs: number;
  } | null;
}

export interface CommitAndClaimInput extends StepResultWrite, StepRows, UnclaimedStep {
  /** The step N hands on to. */
  nextStep: string;
  snapshot: State | null;
  /** The claim of step N+1. */
  next: { leaseOwner: string; worker: string; leaseMs: number };
}

export interface CommitDoneInput extends StepResultWrite, StepRows, UnclaimedStep {
  /** The run's output. */
  output: unknown;
  snapshot: State | null;
}

export type ChainCommit = CommitAndClaimInput | CommitDoneInput;

/**
 * Chains in flight at once commit together: the commits that arrive while earlier ones are
 * under way go as one statement (runtime/db/batcher.ts), each fenced on its own run.
 */
const IN_FLIGHT = 4;
const MAX_BATCH = 200;

/**
 * Commits step N and leases N+1 to `next.leaseOwner`. Resolves with the moment of that claim
 * (the database's clock, as text: the next step's `claimedAt`), or null when the fence rejected it.
 */
export function commitAndClaimNext(db: Db, c: CommitAndClaimInput): Promise<string | null> {
  return batched(db, c);
}

/** Commits the run's last step: the run succeeds with `output`. Resolves with the moment, or null when fenced. */
export function commitDone(db: Db, c: CommitDoneInput): Promise<string | null> {
  return batched(db, c);
}

const batched = batcherPerDb<Db, ChainCommit, string | null>((db) => ({
  inFlight: IN_FLIGHT,
  maxBatch: MAX_BATCH,
  // A commit alone (a run alone, an idle worker) goes as the statement for one run: cheaper than a batch of one.
  sendOne: (one) => commitAndClaimOne(db, one),
  sendMany: async (many) => {
    const held = await commitAndClaimMany(db, many);
    return many.map((m) => held.get(m.runId) ?? null);
  },
}));

/** One row of the batch, as the statement reads it (`jsonb_to_recordset`). */
function row(c: ChainCommit) {
  const next = 'next' in c ? c : null;
  return {
    run_id: c.runId, seq: c.seq, attempt: c.attempt, step: c.step, worker: c.worker, claimed_at: c.claimedAt,
    lease_owner: c.leaseOwner, kind: c.kind, patch: c.patch, next_step: next?.nextStep ?? null, model: c.usage.model,
    input_tokens: c.usage.inputTokens, output_tokens: c.usage.outputTokens, cost_usd: c.usage.costUsd,
    snapshot: c.snapshot, next_owner: next?.next.leaseOwner ?? null, lease_ms: next?.next.leaseMs ?? null,
    // As JSON text, so a run that returns nothing stores JSON null, as a lone commit does.
    output: next ? null : JSON.stringify((c as CommitDoneInput).output ?? null),
    unclaimed: c.unclaimed ? true : null, revision: c.unclaimed?.revision ?? null, elapsed_ms: c.unclaimed ? Math.round(c.unclaimed.elapsedMs) : null,
  };
}

/**
 * Commits many runs' steps in one statement, each claiming its next step or finishing its
 * run; returns, for each run whose fence held, the moment of its commit. Runs are locked in
 * id order, so two batches never wait on each other in a cycle. The rows of step N+1 are not
 * written here: they come with its result, one write each instead of two. A row marked
 * `unclaimed` is fenced on the run being still a fresh run at its first step, not on a lease.
 */
export async function commitAndClaimMany(db: Db, batch: readonly ChainCommit[]): Promise<Map<string, string>> {
  const rows = await queryPrepared<{ id: string; claimed_at: string }>(
    db,
    // A new name with each new column: a server connection may still hold the old text under the old one.
    'baton_commit_claim_next_many_v2',
    sql`
    with i as (
      select * from jsonb_to_recordset(${JSON.stringify(batch.map(row))}::jsonb) as i(
        run_id uuid, seq int, attempt int, step text, worker text, claimed_at timestamptz, lease_owner text, kind step_kind,
        patch jsonb, next_step text, model text, input_tokens int, output_tokens int, cost_usd numeric, snapshot jsonb,
        next_owner text, lease_ms int, output text, unclaimed boolean, revision text, elapsed_ms int)
    ), run as (
      select r.id from runs r join i on r.id = i.run_id
      where r.next_seq = i.seq
        and case when i.unclaimed then ${stillUnclaimed(sql`i.step`)} else r.lease_owner = i.lease_owner and r.status = 'running' end
      order by r.id
      for no key update of r
    ), fenced as (
      -- A row with a next owner claims the next step; one without finishes the run.
      update runs r set
        next_seq = i.seq + 1, next_step = i.next_step,
        status = (case when i.next_owner is null then 'succeeded' else 'running' end)::run_status,
        output = i.output::jsonb, attempt = 1, attempt_base = 0, claims = case when i.next_owner is null then 0 else 1 end,
        lease_owner = i.next_owner, lease_expires_at = now() + i.lease_ms * interval '1 millisecond',
        wait_signal = null, wait_request = null, wake_at = null, signal = null,
        updated_at = now(), finished_at = case when i.next_owner is null then now() end,
        revision = case when i.unclaimed then coalesce(r.revision, i.revision) else r.revision end
      from run join i on i.run_id = run.id
      where r.id = run.id
      returning r.id
    ), ${succeededRows(sql`select i.*, coalesce(i.claimed_at, now() - coalesce(i.elapsed_ms, 0) * interval '1 millisecond') as since
      from i join fenced on fenced.id = i.run_id`)}
    select id, now()::text as claimed_at from fenced`,
  );
  return new Map(rows.map((r) => [r.id, r.claimed_at]));
}

/** Whether `leaseOwner` holds the run at `seq` (a commit-and-claim whose answer was lost did go through); the claim's moment if so. */
export async function leaseHeld(db: Db, runId: string, leaseOwner: string, seq: number): Promise<string | null> {
  const rows = await queryPrepared<{ claimed_at: string }>(
    db,
    'baton_lease_held_since',
    sql`select updated_at::text as claimed_at from runs where id = ${runId} and lease_owner = ${leaseOwner} and next_seq = ${seq} and status = 'running'`,
  );
  return rows[0]?.claimed_at ?? null;
}
