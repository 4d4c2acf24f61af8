/**
 * Operator actions on a run: cancel, retry, deliver a signal, replay. Each is one
 * statement whose WHERE states the only transition it allows; zero rows means the
 * run was not in a state that allows it, and the caller reports why.
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';

export interface Wakeup {
  id: string;
  function: string;
  next_seq: number;
}

/** Cancels a live run; an in-flight step row is marked failed with code `cancelled`. */
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
        duration_ms = (extract(epoch from now() - started_at) * 1000)::int
      where run_id = (select id from target) and status = 'running'
    )
    select * from target`,
  );
  return rows[0] ?? null;
}

/** Restarts a failed or cancelled run from the step where it stopped, with a fresh attempt count. */
export async function retryRun(db: Db, runId: string): Promise<Wakeup | null> {
  const rows = await query<Wakeup>(
    db,
    sql`update runs set status = 'running', attempt = 1, error = null, finished_at = null, wake_at = null, updated_at = now()
        where id = ${runId} and status in ('failed', 'cancelled') and next_step is not null
        returning id, function, next_seq`,
  );
  return rows[0] ?? null;
}

/** Delivers `name` to a run waiting for it; the payload is read by the step that resumes. */
export async function deliverSignal(db: Db, runId: string, name: string, payload: unknown): Promise<Wakeup | null> {
  const rows = await query<Wakeup>(
    db,
    sql`
    with target as (
      update runs set status = 'running', wait_signal = null, wake_at = null, updated_at = now()
      where id = ${runId} and status = 'waiting' and wait_signal = ${name}
      returning id, function, next_seq
    ), delivered as (
      insert into signals (run_id, seq, name, payload)
      select id, next_seq, ${name}, ${JSON.stringify(payload ?? null)}::jsonb from target
      on conflict (run_id, seq) do update set name = excluded.name, payload = excluded.payload, created_at = now()
    )
    select * from target`,
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
  r: { runId: string; newId: string; fromSeq: number; startStep: string },
): Promise<Wakeup | null> {
  const { runId, newId, fromSeq } = r;
  return db.transaction(async (tx) => {
    const t = tx as unknown as Db;
    const rows = await query<Wakeup>(
      t,
      sql`
      insert into runs (id, function, tenant, input, next_step, next_seq, replay_of)
      select r.id_new, o.function, o.tenant, o.input,
        case when ${fromSeq}::int = 0 then ${r.startStep} else (select name from steps where run_id = o.id and seq = ${fromSeq}) end,
        ${fromSeq}, o.id
      from runs o, (select ${newId}::uuid as id_new) r
      where o.id = ${runId}
      returning id, function, next_seq`,
    );
    if (!rows[0]) return null;
    if (fromSeq > 0) {
      await t.execute(sql`
        insert into steps (run_id, seq, name, kind, status, attempt, patch, next_step, error, worker, model,
                           input_tokens, output_tokens, started_at, finished_at, duration_ms)
        select ${newId}, seq, name, kind, status, attempt, patch, next_step, error, worker, model,
               input_tokens, output_tokens, started_at, finished_at, duration_ms
        from steps where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into checkpoints (run_id, seq, state)
        select ${newId}, seq, state from checkpoints where run_id = ${runId} and seq < ${fromSeq}`);
      await t.execute(sql`
        insert into signals (run_id, seq, name, payload)
        select ${newId}, seq, name, payload from signals where run_id = ${runId} and seq <= ${fromSeq}`);
    }
    return rows[0];
  });
}
