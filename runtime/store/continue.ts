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
import { createBatcher } from '../db/batcher.ts';
import { type Db, queryPrepared } from '../db/connect.ts';
import type { State } from '../state.ts';
import type { StepResultWrite } from './commit.ts';
import { ms } from './step-sql.ts';

export interface CommitAndClaimInput extends StepResultWrite {
  /** The step N hands on to. */
  nextStep: string;
  snapshot: State | null;
  /** The claim of step N+1. */
  next: { leaseOwner: string; worker: string; leaseMs: number };
}

/**
 * Chains in flight at once commit together: the commits that arrive while earlier ones are
 * under way go as one statement (runtime/db/batcher.ts), each fenced on its own run.
 */
const IN_FLIGHT = 4;
const MAX_BATCH = 200;
const batchers = new WeakMap<Db, (c: CommitAndClaimInput) => Promise<boolean>>();

/** True when step N committed and N+1 is now leased to `next.leaseOwner`; false when the fence rejected it. */
export function commitAndClaimNext(db: Db, c: CommitAndClaimInput): Promise<boolean> {
  let send = batchers.get(db);
  if (!send) {
    send = createBatcher<CommitAndClaimInput, boolean>({
      inFlight: IN_FLIGHT,
      maxBatch: MAX_BATCH,
      sendOne: async (one) => (await commitAndClaimMany(db, [one])).has(one.runId),
      sendMany: async (many) => {
        const held = await commitAndClaimMany(db, many);
        return many.map((m) => held.has(m.runId));
      },
    });
    batchers.set(db, send);
  }
  return send(c);
}

/** One row of the batch, as the statement reads it (`jsonb_to_recordset`). */
function row(c: CommitAndClaimInput) {
  return {
    run_id: c.runId, seq: c.seq, attempt: c.attempt, lease_owner: c.leaseOwner, kind: c.kind, patch: c.patch,
    next_step: c.nextStep, model: c.usage.model, input_tokens: c.usage.inputTokens, output_tokens: c.usage.outputTokens,
    cost_usd: c.usage.costUsd, snapshot: c.snapshot, next_owner: c.next.leaseOwner, worker: c.next.worker, lease_ms: c.next.leaseMs,
  };
}

/**
 * Commits and claims-next for many runs in one statement; returns the runs whose fence held.
 * Runs are locked in id order, so two batches never wait on each other in a cycle.
 */
export async function commitAndClaimMany(db: Db, batch: readonly CommitAndClaimInput[]): Promise<Set<string>> {
  const rows = await queryPrepared<{ id: string }>(
    db,
    'baton_commit_claim_many',
    sql`
    with i as (
      select * from jsonb_to_recordset(${JSON.stringify(batch.map(row))}::jsonb) as i(
        run_id uuid, seq int, attempt int, lease_owner text, kind step_kind, patch jsonb, next_step text, model text,
        input_tokens int, output_tokens int, cost_usd numeric, snapshot jsonb, next_owner text, worker text, lease_ms int)
    ), run as (
      select r.id from runs r join i on r.id = i.run_id
      where r.lease_owner = i.lease_owner and r.next_seq = i.seq and r.status = 'running'
      order by r.id
      for update of r
    ), fenced as (
      update runs r set
        next_seq = i.seq + 1, next_step = i.next_step, status = 'running',
        output = null, attempt = 1, attempt_base = 0, claims = 1,
        lease_owner = i.next_owner, lease_expires_at = now() + i.lease_ms * interval '1 millisecond',
        wait_signal = null, wait_request = null, wake_at = null, signal = null,
        updated_at = now(), finished_at = null
      from run join i on i.run_id = run.id
      where r.id = run.id
      returning r.id
    ), f as (
      select i.* from i join fenced on fenced.id = i.run_id
    ), step as (
      update steps s set
        status = 'succeeded', kind = f.kind, patch = f.patch, next_step = f.next_step,
        error = null, model = f.model, input_tokens = f.input_tokens, output_tokens = f.output_tokens, cost_usd = f.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
      from f where s.run_id = f.run_id and s.seq = f.seq
    ), attempt as (
      update step_attempts a set
        status = 'succeeded', error = null,
        model = f.model, input_tokens = f.input_tokens, output_tokens = f.output_tokens, cost_usd = f.cost_usd,
        finished_at = now(), duration_ms = ${ms(sql`now() - a.started_at`)}
      from f where a.run_id = f.run_id and a.seq = f.seq and a.attempt = f.attempt
    ), checkpoint as (
      insert into checkpoints (run_id, seq, state)
      select f.run_id, f.seq, f.snapshot from f where f.snapshot is not null
      on conflict (run_id, seq) do update set state = excluded.state, created_at = now()
    ), started as (
      insert into steps as s (run_id, seq, name, status, attempt, worker, started_at)
      select f.run_id, f.seq + 1, f.next_step, 'running', 1, f.worker, now() from f
      on conflict (run_id, seq) do update set
        name = excluded.name, status = excluded.status, attempt = excluded.attempt, error = null, finished_at = null,
        model = null, input_tokens = null, output_tokens = null, worker = excluded.worker, started_at = excluded.started_at, duration_ms = null
    ), attempt_started as (
      insert into step_attempts as a (run_id, seq, attempt, status, worker, started_at)
      select f.run_id, f.seq + 1, 1, 'running', f.worker, now() from f
      on conflict (run_id, seq, attempt) do update set
        status = excluded.status, error = null, finished_at = null, model = null, input_tokens = null, output_tokens = null,
        worker = excluded.worker, started_at = excluded.started_at, duration_ms = null
    )
    select id from fenced`,
  );
  return new Set(rows.map((r) => r.id));
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
