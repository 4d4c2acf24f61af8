/**
 * Operator actions on a run: cancel, retry, replay (signals: store/signals.ts). Each
 * is one statement whose WHERE states the only transition it allows; zero rows means
 * the run was not in a state that allows it, and the caller reports why.
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';

export interface Wakeup {
  id: string;
  function: string;
  next_seq: number;
}

/**
 * Cancels a live run; an in-flight step (its row and its attempt's) is marked failed with
 * code `cancelled`, and so is every branch of a fan-out that was still queued or running.
 */
export async function cancelRun(db: Db, runId: string): Promise<Wakeup | null> {
  const error = JSON.stringify({ code: 'cancelled', message: 'the run was cancelled' });
  const rows = await query<Wakeup>(
    db,
    sql`
    with target as (
      update runs set status = 'cancelled', error = ${error}::jsonb, lease_owner = null, lease_expires_at = null,
        wake_at = null, wait_signal = null, finished_at = now(), updated_at = now()
      where id = ${runId} and status in ('queued', 'running', 'waiting')
      returning id, function, next_seq
    ), step as (
      update steps set status = 'failed', error = ${error}::jsonb, finished_at = now(),
        lease_owner = null, lease_expires_at = null, wake_at = null,
        duration_ms = (extract(epoch from now() - started_at) * 1000)::int
      where run_id = (select id from target) and status in ('queued', 'running')
    ), attempt as (
      update step_attempts set status = 'failed', error = ${error}::jsonb, finished_at = now(),
        duration_ms = (extract(epoch from now() - started_at) * 1000)::int
      where run_id = (select id from target) and status = 'running'
    )
    select * from target`,
  );
  return rows[0] ?? null;
}

/**
 * Restarts a failed or cancelled run from the step where it stopped, with a fresh
 * budget of attempts. The attempt count goes on (the failed attempts stay in
 * `step_attempts`, and their numbers stay unique), the signal that step resumed with
 * is kept, and the crash-loop count starts over. A run stopped during a fan-out
 * (`branches > 0`) gets every branch that had not succeeded queued again, each with
 * a fresh budget; the join's wake-up that the caller publishes finds them unfinished
 * and re-publishes them (engine/fanout.ts settleFanout).
 */
export async function retryRun(db: Db, runId: string): Promise<Wakeup | null> {
  const lastAttempt = sql`coalesce((select max(a.attempt) from step_attempts a where a.run_id = r.id and a.seq = r.next_seq), r.attempt - 1)`;
  const lastBranchAttempt = sql`coalesce((select max(a.attempt) from step_attempts a where a.run_id = s.run_id and a.seq = s.seq), s.attempt - 1)`;
  const current = sql`s.branch is not null and s.status <> 'succeeded'
    and s.fanout_seq = (select max(f.fanout_seq) from steps f where f.run_id = s.run_id)`;
  const rows = await query<Wakeup>(
    db,
    sql`
    with target as (
      update runs r set status = 'running', attempt = ${lastAttempt} + 1, attempt_base = ${lastAttempt}, claims = 0,
        error = null, finished_at = null, wake_at = null, updated_at = now(),
        branches = case when r.branches > 0 then (select count(*)::int from steps s where s.run_id = r.id and ${current}) else 0 end
      where id = ${runId} and status in ('failed', 'cancelled') and next_step is not null
      returning id, function, next_seq, branches
    ), branches as (
      update steps s set status = 'queued', attempt = ${lastBranchAttempt} + 1, attempt_base = ${lastBranchAttempt}, claims = 0,
        lease_owner = null, lease_expires_at = null, wake_at = null, finished_at = null, duration_ms = null
      from target where target.branches > 0 and s.run_id = target.id and ${current}
    )
    select id, function, next_seq from target`,
  );
  return rows[0] ?? null;
}

/**
 * Replays a run as a new run of the same function and input. With `fromSeq`, the
 * new run keeps the original's steps before it (their rows, patches and snapshots)
 * and runs again from there: time travel for debugging a step.
 */
export async function replayRun(
  db: Db,
  r: { runId: string; newId: string; fromSeq: number; startStep: string; traceContext?: string | null },
): Promise<Wakeup | null> {
  const { runId, newId, fromSeq } = r;
  return db.transaction(async (tx) => {
    const t = tx as unknown as Db;
    const rows = await query<Wakeup>(
      t,
      sql`
      insert into runs (id, function, tenant, input, next_step, next_seq, replay_of, signal, trace_context)
      select r.id_new, o.function, o.tenant, o.input,
        case when ${fromSeq}::int = 0 then ${r.startStep} else (select name from steps where run_id = o.id and seq = ${fromSeq}) end,
        ${fromSeq}, o.id,
        -- The step replayed first resumes with the signal it received the first time.
        (select jsonb_build_object('name', g.name, 'payload', g.payload, 'timedOut', false) from signals g
          where g.run_id = o.id and g.seq = ${fromSeq} and ${fromSeq}::int > 0),
        ${r.traceContext ?? null}
      from runs o, (select ${newId}::uuid as id_new) r
      where o.id = ${runId}
      returning id, function, next_seq`,
    );
    if (!rows[0]) return null;
    if (fromSeq > 0) {
      await t.execute(sql`
        insert into steps (run_id, seq, name, kind, status, attempt, patch, next_step, error, worker, model,
                           input_tokens, output_tokens, started_at, finished_at, duration_ms, branch, fanout_seq, input, output)
        select ${newId}, seq, name, kind, status, attempt, patch, next_step, error, worker, model,
               input_tokens, output_tokens, started_at, finished_at, duration_ms, branch, fanout_seq, input, output
        from steps where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into step_attempts (run_id, seq, attempt, status, error, worker, model, input_tokens, output_tokens,
                                   started_at, finished_at, duration_ms)
        select ${newId}, seq, attempt, status, error, worker, model, input_tokens, output_tokens,
               started_at, finished_at, duration_ms
        from step_attempts where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into step_calls (run_id, seq, attempt, kind, request, response, error, created_at)
        select ${newId}, seq, attempt, kind, request, response, error, created_at
        from step_calls where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into checkpoints (run_id, seq, state)
        select ${newId}, seq, state from checkpoints where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into signals (run_id, seq, name, payload, created_at)
        select ${newId}, seq, name, payload, created_at from signals
        where run_id = ${runId} and seq <= ${fromSeq} order by id`);
    }
    return rows[0];
  });
}
