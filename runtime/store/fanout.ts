/**
 * Fan-out, part 1: the commit of a step that returned `parallel(...)`, and what an
 * unclaimable message of a fanning run should become (README "Fan-out and join").
 *
 * A fan-out at seq N with K branches commits, in one statement fenced like any commit
 * (the run row's lease, `next_seq = N`, `running`): the step's row and attempt, its
 * patch (and a snapshot when due), K `queued` branch rows at seqs N+1..N+K (`branch`
 * 1..K, `fanout_seq` N, their `input`), and the run: `next_seq` N+K+1 and `next_step`
 * the join, `branches` K, no lease. The caller then publishes the K branches; the join
 * is published by whichever statement finishes the last branch (store/branch.ts).
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';
import type { BranchSpec } from '../define.ts';
import type { State } from '../state.ts';
import type { Verdict } from './claim.ts';
import type { StepResultWrite, StepRows } from './commit.ts';
import { leaseFence, succeededStep } from './step-sql.ts';


export interface FanoutCommitInput extends StepResultWrite, StepRows {
  branches: readonly BranchSpec[];
  join: string;
  onBranchFailure: 'fail' | 'continue';
  snapshot: State | null;
}

/** Returns the seqs of the branches to publish, or null when the fence rejected the commit. */
export async function commitFanout(db: Db, c: FanoutCommitInput): Promise<number[] | null> {
  const k = c.branches.length;
  const specs = JSON.stringify(c.branches.map((b) => ({ step: b.step, input: b.input ?? null })));
  const snapshot = c.snapshot === null ? null : JSON.stringify(c.snapshot);
  const rows = await query<{ id: string }>(
    db,
    sql`
    with ${leaseFence(c)}, fenced as (
      update runs r set
        next_seq = ${c.seq + k + 1}, next_step = ${c.join}, status = 'running', output = null,
        attempt = 1, attempt_base = 0, claims = 0, lease_owner = null, lease_expires_at = null,
        wait_signal = null, wait_request = null, wake_at = null, signal = null,
        branches = ${k}, branch_failure = ${c.onBranchFailure}, updated_at = now()
      from run where r.id = run.id
      returning r.id
    ), ${succeededStep(c, c.join, snapshot)}, queued as (
      insert into steps as s (run_id, seq, name, status, attempt, branch, fanout_seq, input, started_at)
      select fenced.id, ${c.seq}::int + b.ord::int, b.spec ->> 'step', 'queued'::step_status, 1, b.ord::int, ${c.seq}, b.spec -> 'input', now()
      from fenced, jsonb_array_elements(${specs}::jsonb) with ordinality as b(spec, ord)
      -- Nothing should be there; if a row is (a hand-edited run), the fan-out's row wins.
      on conflict (run_id, seq) do update set name = excluded.name, status = 'queued', attempt = 1, attempt_base = 0,
        branch = excluded.branch, fanout_seq = excluded.fanout_seq, input = excluded.input, output = null, patch = null,
        kind = null, error = null, next_step = null, lease_owner = null, lease_expires_at = null, claims = 0, wake_at = null,
        worker = null, model = null, input_tokens = null, output_tokens = null, cost_usd = null, started_at = now(), finished_at = null, duration_ms = null
    )
    select id from fenced`,
  );
  if (!rows[0]) return null;
  return c.branches.map((_, i) => c.seq + i + 1);
}

/** A branch of a fanning run, as `probeBranches` reads it. */
export interface BranchProbe {
  seq: number;
  status: string;
  leased: boolean;
  lease_expires_ms: number | null;
  wake_ms: number | null;
  now_ms: number;
}

/** The unfinished branches (`queued` or `running`) of a run, and the branch at `seq` if it is one, on the database's clock. */
export async function probeBranches(db: Db, runId: string, seq: number): Promise<BranchProbe[]> {
  return query<BranchProbe>(
    db,
    sql`select seq, status::text as status, (lease_owner is not null and lease_expires_at > now()) as leased,
      (extract(epoch from lease_expires_at) * 1000)::float8 as lease_expires_ms,
      (extract(epoch from wake_at) * 1000)::float8 as wake_ms,
      (extract(epoch from now()) * 1000)::float8 as now_ms
    from steps where run_id = ${runId} and branch is not null and (status in ('queued', 'running') or seq = ${seq})
    order by seq`,
  );
}

/**
 * Pure decision table for an unclaimable message of a run that is fanning out
 * (`runs.branches > 0`, so its join is not due). A message for one of its unfinished
 * branches is re-checked when that branch's lease or backoff ends; for a finished one it
 * is dropped (a duplicate: its siblings publish nothing for it). Any other message
 * (the fan-out step's own, redelivered after a crash before it published the branches;
 * an early join; a sweep) re-publishes every branch that no live lease holds, each
 * after its backoff: a duplicate costs one failed claim, a lost branch would stall the run.
 */
export function diagnoseFanout(fn: string, seq: number, branches: readonly BranchProbe[]): Verdict[] {
  const mine = branches.find((b) => b.seq === seq);
  if (mine && mine.status !== 'queued' && mine.status !== 'running') return [{ action: 'drop', reason: `duplicate: branch ${mine.status}` }];
  if (mine) {
    if (mine.leased && mine.lease_expires_ms !== null) {
      return [{ action: 'recheck', reason: 'branch in flight elsewhere', function: fn, seq, delayMs: Math.max(0, mine.lease_expires_ms - mine.now_ms) + 50 }];
    }
    if (mine.wake_ms !== null && mine.wake_ms > mine.now_ms) {
      return [{ action: 'recheck', reason: 'branch backoff not over', function: fn, seq, delayMs: mine.wake_ms - mine.now_ms }];
    }
    return [{ action: 'recheck', reason: 'raced with another claimer of the branch', function: fn, seq, delayMs: 100 }];
  }
  const idle = branches.filter((b) => !b.leased && (b.status === 'queued' || b.status === 'running'));
  if (idle.length === 0) return [{ action: 'drop', reason: 'fanning out: every unfinished branch is in flight; the last one publishes the join' }];
  return idle.map((b) => ({
    action: 'republish' as const,
    reason: 'repair: fanning out, branch not in flight',
    function: fn,
    seq: b.seq,
    delayMs: b.wake_ms !== null ? Math.max(0, b.wake_ms - b.now_ms) : 0,
  }));
}
