/**
 * Step protocol, parts 4 and 1 at once: commit step N and claim step N+1 for the same
 * worker, in one statement, when the step handed on to a next step that this process
 * will run at once (engine/execute-step.ts "continue in process"). One write
 * transaction and one round trip instead of two of each, and no trip through Redis.
 *
 * The commit is the ordinary one (store/commit.ts), fenced by the same lease; the
 * claim is what `claimStep` would do for step N+1 just after it, with a fresh lease
 * owner: the run stays `running`, leased to the new owner, its claim count at 1 (a
 * claim that never reaches a commit still counts towards a crash loop), and the step
 * and attempt rows of N+1 are opened as `running`. The fence failing writes nothing.
 *
 * Nothing is lost if the process dies afterwards: the message that ran step N stays
 * pending in its stream, touched while the worker's leases beat; once the lease of
 * N+1 has run out, that message is reclaimed, its claim finds the run past N and idle,
 * and step N+1 is re-published (the repair of a crash between commit and hand-on).
 */
import { sql } from 'drizzle-orm';
import { type Db, queryPrepared } from '../db/connect.ts';
import type { State } from '../state.ts';
import type { StepResultWrite } from './commit.ts';
import { leaseFence, succeededStep } from './step-sql.ts';

export interface CommitAndClaimInput extends StepResultWrite {
  /** The step N hands on to. */
  nextStep: string;
  snapshot: State | null;
  /** The claim of step N+1. */
  next: { leaseOwner: string; worker: string; leaseMs: number };
}


/** True when step N committed and N+1 is now leased to `next.leaseOwner`; false when the fence rejected it. */
export async function commitAndClaimNext(db: Db, c: CommitAndClaimInput): Promise<boolean> {
  const snapshot = c.snapshot === null ? null : JSON.stringify(c.snapshot);
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_commit_claim_next',
    sql`
    with ${leaseFence(c)}, fenced as (
      update runs r set
        next_seq = ${c.seq} + 1, next_step = ${c.nextStep}, status = 'running',
        output = null, attempt = 1, attempt_base = 0, claims = 1,
        lease_owner = ${c.next.leaseOwner}, lease_expires_at = now() + ${c.next.leaseMs}::int * interval '1 millisecond',
        wait_signal = null, wait_request = null, wake_at = null, signal = null,
        updated_at = now(), finished_at = null
      from run
      where r.id = run.id
      returning r.id
    ), ${succeededStep(c, c.nextStep, snapshot)}, started as (
      insert into steps as s (run_id, seq, name, status, attempt, worker, started_at)
      select id, ${c.seq} + 1, ${c.nextStep}, 'running', 1, ${c.next.worker}, now() from fenced
      on conflict (run_id, seq) do update set
        name = excluded.name, status = excluded.status, attempt = excluded.attempt, error = null, finished_at = null,
        model = null, input_tokens = null, output_tokens = null, worker = excluded.worker, started_at = excluded.started_at, duration_ms = null
    ), attempt_started as (
      insert into step_attempts as a (run_id, seq, attempt, status, worker, started_at)
      select id, ${c.seq} + 1, 1, 'running', ${c.next.worker}, now() from fenced
      on conflict (run_id, seq, attempt) do update set
        status = excluded.status, error = null, finished_at = null, model = null, input_tokens = null, output_tokens = null,
        worker = excluded.worker, started_at = excluded.started_at, duration_ms = null
    )
    select id from fenced`,
  );
  return rows.length > 0;
}

/** Whether `leaseOwner` holds the run at `seq` (a commit-and-claim whose answer was lost did go through). */
export async function leaseHeld(db: Db, runId: string, leaseOwner: string, seq: number): Promise<boolean> {
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_lease_held',
    sql`select id from runs where id = ${runId} and lease_owner = ${leaseOwner} and next_seq = ${seq} and status = 'running'`,
  );
  return rows.length > 0;
}
