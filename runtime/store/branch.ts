/**
 * Fan-out, part 2: one branch's claim, commit, failure record and lease release (README
 * "Fan-out and join"). A branch is an ordinary step with its own seq, but while a
 * fan-out runs the run row holds no lease: each branch is leased on its own `steps`
 * row, so K workers can hold K branches of one run at once.
 *
 * Locks: the run row first (FOR UPDATE), then the branch's step row, in every
 * statement here that writes — the same order as cancel, retry and the run's own
 * claim and commit, so no two of them deadlock. A branch's commit and failure record
 * are fenced by the branch row's lease (`lease_owner = $lease and status = 'running'`)
 * and by the run being `running`; a cancelled or failed run, or a lost lease, matches
 * zero rows and the result is discarded. The run row counts unfinished branches
 * (`runs.branches`): the statement that finishes the last one sees 0 and its caller
 * publishes the join. Heartbeats of branch leases: store/lease.ts (heartbeatMany).
 */
import { type SQL, sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';
import type { BranchInfo } from '../define.ts';
import type { ErrorJson } from '../errors.ts';
import { type Patch, type State, replay } from '../state.ts';
import type { ClaimedStep } from './claim.ts';
import type { FailureInput, StepResultWrite } from './commit.ts';
import { claimedAttempt, ms } from './step-sql.ts';


/**
 * The CTEs that stop the other unfinished branches of a run that a branch just failed:
 * their rows (and running attempts) are closed `failed` with `error`. `when` is a SQL
 * condition; `seq` the failing branch, which its own CTE writes.
 */
function stopSiblings(runId: string, seq: number, error: string, when: SQL): SQL {
  return sql`siblings as (
      update steps s set status = 'failed', error = ${error}::jsonb, lease_owner = null, lease_expires_at = null, wake_at = null,
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
      where ${when} and s.run_id = ${runId} and s.branch is not null and s.seq <> ${seq} and s.status in ('queued', 'running')
    ), sibling_attempts as (
      update step_attempts a set status = 'failed', error = ${error}::jsonb, finished_at = now(),
        duration_ms = ${ms(sql`now() - a.started_at`)}
      where ${when} and a.run_id = ${runId} and a.seq <> ${seq} and a.status = 'running'
        and a.seq in (select seq from steps where run_id = ${runId} and branch is not null)
    )`;
}

export interface BranchClaimInput {
  runId: string;
  function: string;
  seq: number;
  leaseOwner: string;
  worker: string;
  leaseMs: number;
  maxClaims?: number;
}

interface BranchClaimRow {
  function: string;
  tenant: string;
  input: unknown;
  revision: string | null;
  name: string;
  attempt: number;
  attempt_base: number;
  branch: number;
  fanout_seq: number;
  branch_input: unknown;
  of: number;
  crash_loop: ErrorJson | null;
  snapshot: State | null;
  patches: Patch[];
}

/**
 * Claims the branch at `seq` and loads the state it runs on: the run's state as of
 * the fan-out step (snapshot + patches up to `fanout_seq`), never a sibling's change.
 * Claimable: the run is `running` and fanning out, the row is a branch that is
 * `queued` (backoff over) or `running` under an expired lease (its worker died) or
 * under this claimer's own. Like the run's claim, a branch claimed `maxClaims` times
 * without a commit or failure record fails the run `crash_loop` instead.
 */
export async function claimBranch(db: Db, c: BranchClaimInput): Promise<ClaimedStep | null> {
  const own = sql`s.lease_owner is not distinct from ${c.leaseOwner}`;
  const crash = sql`jsonb_build_object('code', 'crash_loop', 'message', 'branch ' || go.branch || ' ("' || go.name || '") was claimed '
    || go.claims || ' times without reaching a commit or a failure: its worker died each time (out of memory, a native crash, '
    || 'process.exit?). Fix the step, then POST /v1/runs/' || ${c.runId} || '/retry', 'retryable', false,
    'details', jsonb_build_object('claims', go.claims))`;
  const rows = await query<BranchClaimRow>(
    db,
    sql`
    with run as (
      select id, function, tenant, input, revision from runs
      where id = ${c.runId} and function = ${c.function} and status = 'running' and branches > 0
      for update
    ), go as (
      select s.seq, s.name, s.claims, s.branch, ${own} as own,
        (not ${own} and s.claims >= ${c.maxClaims ?? null}::int) is true as looping
      from steps s, run
      where s.run_id = run.id and s.seq = ${c.seq} and s.branch is not null
        and (s.status = 'queued' or (s.status = 'running' and (s.lease_owner is null or s.lease_expires_at < now() or ${own})))
        and (s.wake_at is null or s.wake_at <= now())
      for update of s
    ), claimed as (
      update steps s set
        status = (case when go.looping then 'failed' else 'running' end)::step_status,
        lease_owner = case when go.looping then null else ${c.leaseOwner} end,
        lease_expires_at = case when go.looping then null else now() + ${c.leaseMs}::int * interval '1 millisecond' end,
        wake_at = null,
        claims = case when go.looping or go.own then s.claims else s.claims + 1 end,
        error = case when go.looping then ${crash} else s.error end,
        worker = case when go.looping then s.worker else ${c.worker} end,
        started_at = case when go.looping then s.started_at else now() end,
        finished_at = case when go.looping then now() end,
        duration_ms = case when go.looping then ${ms(sql`now() - s.started_at`)} end,
        model = null, input_tokens = null, output_tokens = null, cost_usd = null
      from go
      where s.run_id = ${c.runId} and s.seq = go.seq
      returning s.seq, s.name, s.attempt, s.attempt_base, s.branch, s.fanout_seq, s.input,
        case when go.looping then s.error end as crash_loop
    ), failed_run as (
      update runs r set status = 'failed', finished_at = now(), updated_at = now(), lease_owner = null, lease_expires_at = null,
        error = claimed.crash_loop || jsonb_build_object('step', claimed.name, 'seq', claimed.seq, 'attempt', claimed.attempt, 'branch', claimed.branch)
      from claimed where r.id = ${c.runId} and claimed.crash_loop is not null
    ), ${stopSiblings(c.runId, c.seq, JSON.stringify({ code: 'cancelled', message: 'another branch of the fan-out failed the run' }), sql`exists (select 1 from claimed where crash_loop is not null)`)},
    ${claimedAttempt(sql`${c.runId}`, sql`seq`, sql`${c.worker}`)}, snap as (
      select seq, state from checkpoints
      where run_id = ${c.runId} and seq <= (select fanout_seq from claimed) order by seq desc limit 1
    )
    select run.function, run.tenant, run.input, run.revision,
      c.name, c.attempt, c.attempt_base, c.branch, c.fanout_seq, c.input as branch_input, c.crash_loop,
      (select count(*)::int from steps b where b.run_id = run.id and b.fanout_seq = c.fanout_seq) as of,
      (select state from snap) as snapshot,
      (select coalesce(jsonb_agg(s.patch order by s.seq), '[]'::jsonb) from steps s
        where s.run_id = run.id and s.seq <= c.fanout_seq and s.seq > coalesce((select seq from snap), -1)) as patches,
      (select count(*) from attempt)::int as written
    from claimed c, run`,
  );
  const row = rows[0];
  if (!row) return null;
  const branch: BranchInfo = { index: row.branch, of: row.of, fanoutSeq: row.fanout_seq, input: row.branch_input };
  return {
    runId: c.runId,
    function: row.function,
    tenant: row.tenant,
    input: row.input,
    step: row.name,
    seq: c.seq,
    attempt: row.attempt,
    attemptBase: row.attempt_base,
    revision: row.revision,
    state: replay(row.snapshot, row.patches),
    signal: undefined,
    crashLoop: row.crash_loop,
    branch,
    branches: undefined,
    rows: null,
  };
}

/** Gives a branch's lease up (graceful shutdown); a branch handed back is not a crashed claim. */
export async function releaseBranch(db: Db, runId: string, seq: number, leaseOwner: string): Promise<boolean> {
  const rows = await query<{ seq: number }>(
    db,
    sql`update steps set lease_owner = null, lease_expires_at = null, claims = greatest(claims - 1, 0)
        where run_id = ${runId} and seq = ${seq} and lease_owner = ${leaseOwner}
        returning seq`,
  );
  return rows.length > 0;
}

export interface BranchCommitInput extends StepResultWrite {
  output: unknown;
}

export interface BranchFinished {
  /** This was the last unfinished branch: publish the join at `joinSeq`. */
  last: boolean;
  joinSeq: number;
}

/** Commits a branch's result. Null when the fence rejected it. */
export async function commitBranch(db: Db, c: BranchCommitInput): Promise<BranchFinished | null> {
  const rows = await query<{ last: boolean; join_seq: number }>(
    db,
    sql`
    with run as (
      select id from runs where id = ${c.runId} and status = 'running' and branches > 0 for update
    ), b as (
      select s.seq from steps s, run
      where s.run_id = run.id and s.seq = ${c.seq} and s.lease_owner = ${c.leaseOwner} and s.status = 'running'
      for update of s
    ), step as (
      update steps s set status = 'succeeded', kind = ${c.kind}::step_kind, patch = ${JSON.stringify(c.patch)}::jsonb,
        output = ${JSON.stringify(c.output ?? null)}::jsonb, error = null, lease_owner = null, lease_expires_at = null, claims = 0,
        model = ${c.usage.model}, input_tokens = ${c.usage.inputTokens}, output_tokens = ${c.usage.outputTokens}, cost_usd = ${c.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
      from b where s.run_id = ${c.runId} and s.seq = b.seq
    ), attempt as (
      update step_attempts a set status = 'succeeded', error = null,
        model = ${c.usage.model}, input_tokens = ${c.usage.inputTokens}, output_tokens = ${c.usage.outputTokens}, cost_usd = ${c.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - a.started_at`)}
      from b where a.run_id = ${c.runId} and a.seq = b.seq and a.attempt = ${c.attempt}
    ), fenced as (
      update runs r set branches = r.branches - 1, updated_at = now()
      from b where r.id = ${c.runId}
      returning r.branches, r.next_seq
    )
    select branches = 0 as last, next_seq as join_seq from fenced`,
  );
  const row = rows[0];
  return row ? { last: row.last, joinSeq: row.join_seq } : null;
}

/** A branch's failure: as a step's, and the run's error names the branch. */
export interface BranchFailureInput extends FailureInput {
  runError: FailureInput['runError'] & { branch: number };
}

export interface BranchFailureResult {
  /** The branch is finished (failed, onBranchFailure 'continue') and was the last: publish the join. */
  last: boolean;
  joinSeq: number;
  /** The failure failed the run (onBranchFailure 'fail', the default). */
  runFailed: boolean;
}

/**
 * Records a failed attempt of a branch (same fence as its commit). With attempts left,
 * the branch goes back to `queued` with its backoff in `wake_at`. Without, the run's
 * `branch_failure` decides, in this statement: `continue` finishes the branch as
 * failed (counted like a commit; the join sees the error); `fail` fails the run and
 * stops the other unfinished branches. Null when the fence rejected it.
 */
export async function recordBranchFailure(db: Db, f: BranchFailureInput): Promise<BranchFailureResult | null> {
  const retry = f.retryInMs !== null;
  const error = JSON.stringify(f.error);
  const failsRun = sql`(not ${retry} and exists (select 1 from run where run.branch_failure is distinct from 'continue'))`;
  const rows = await query<{ last: boolean; join_seq: number; run_failed: boolean }>(
    db,
    sql`
    with run as (
      select id, branch_failure from runs where id = ${f.runId} and status = 'running' and branches > 0 for update
    ), b as (
      select s.seq from steps s, run
      where s.run_id = run.id and s.seq = ${f.seq} and s.lease_owner = ${f.leaseOwner} and s.status = 'running'
      for update of s
    ), step as (
      update steps s set
        status = (case when ${retry} then 'queued' else 'failed' end)::step_status,
        attempt = s.attempt + ${retry ? 1 : 0}, claims = 0, lease_owner = null, lease_expires_at = null,
        wake_at = ${retry ? sql`now() + ${f.retryInMs}::int * interval '1 millisecond'` : sql`null`},
        kind = coalesce(${f.kind}::step_kind, s.kind), error = ${error}::jsonb,
        model = ${f.usage.model}, input_tokens = ${f.usage.inputTokens}, output_tokens = ${f.usage.outputTokens}, cost_usd = ${f.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - s.started_at`)}
      from b where s.run_id = ${f.runId} and s.seq = b.seq
    ), attempt as (
      update step_attempts a set status = 'failed', error = ${error}::jsonb,
        model = ${f.usage.model}, input_tokens = ${f.usage.inputTokens}, output_tokens = ${f.usage.outputTokens}, cost_usd = ${f.usage.costUsd},
        finished_at = now(), duration_ms = ${ms(sql`now() - a.started_at`)}
      from b where a.run_id = ${f.runId} and a.seq = b.seq and a.attempt = ${f.attempt}
    ), ${stopSiblings(f.runId, f.seq, JSON.stringify({ code: 'cancelled', message: `branch ${f.runError.branch} ("${f.runError.step}") failed the run` }), sql`exists (select 1 from b) and ${failsRun}`)},
    fenced as (
      update runs r set updated_at = now(),
        branches = r.branches - (case when not ${retry} and r.branch_failure = 'continue' then 1 else 0 end),
        status = (case when ${failsRun} then 'failed' else 'running' end)::run_status,
        error = case when ${failsRun} then ${JSON.stringify(f.runError)}::jsonb else r.error end,
        finished_at = case when ${failsRun} then now() end
      from b where r.id = ${f.runId}
      returning r.branches, r.next_seq, r.status
    )
    select not ${retry} and branches = 0 and status = 'running' as last, next_seq as join_seq, status = 'failed' as run_failed
    from fenced`,
  );
  const row = rows[0];
  return row ? { last: row.last, joinSeq: row.join_seq, runFailed: row.run_failed } : null;
}
