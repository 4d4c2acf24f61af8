/**
 * The reads behind event streams (runtime/api/streams/run-watchers.ts): a run's rows
 * from one seq on, so a watcher reads only what may have changed since it last looked
 * (steps before the run's next seq are final), and the change stamps of many runs in one
 * statement, so the safety-net poll costs one query however many runs are watched.
 */
import { and, asc, eq, gte, inArray, or } from 'drizzle-orm';
import { runs, stepAttempts, steps } from '../../schema/tables.ts';
import type { Db } from '../db/connect.ts';
import { type RunWithSteps, getRun } from './runs.ts';
import { inSnapshot } from './snapshot.ts';

/**
 * The run, with its steps and attempts from `fromSeq` on (all of them from 0), at one instant
 * (store/snapshot.ts): read apart, a commit landing between them showed an attempt that
 * succeeded beside its step's row from before, and the stream sent a step.completed with no kind.
 */
export function readRunSince(db: Db, id: string, fromSeq: number): Promise<RunWithSteps | null> {
  return inSnapshot(db, async (t) => {
    const run = await getRun(t, id);
    if (!run) return null;
    const rows = await t.select().from(steps).where(and(eq(steps.runId, id), gte(steps.seq, fromSeq))).orderBy(asc(steps.seq));
    const attempts = await t
      .select()
      .from(stepAttempts)
      .where(and(eq(stepAttempts.runId, id), gte(stepAttempts.seq, fromSeq)))
      .orderBy(asc(stepAttempts.seq), asc(stepAttempts.attempt));
    return { run, steps: rows, attempts };
  });
}

/**
 * Many runs at once, each from its own seq on: three statements however many runs (the
 * watchers read every run that changed in the last tick together), at one instant as above.
 * Runs that do not exist are absent from the answer.
 */
export async function readRunsSince(db: Db, targets: ReadonlyArray<{ id: string; fromSeq: number }>): Promise<Map<string, RunWithSteps>> {
  const out = new Map<string, RunWithSteps>();
  if (targets.length === 0) return out;
  const ids = targets.map((t) => t.id);
  const [runRows, stepRows, attemptRows] = await inSnapshot(db, async (t) => [
    await t.select().from(runs).where(inArray(runs.id, ids)),
    await t
      .select()
      .from(steps)
      .where(or(...targets.map((w) => and(eq(steps.runId, w.id), gte(steps.seq, w.fromSeq)))))
      .orderBy(asc(steps.runId), asc(steps.seq)),
    await t
      .select()
      .from(stepAttempts)
      .where(or(...targets.map((w) => and(eq(stepAttempts.runId, w.id), gte(stepAttempts.seq, w.fromSeq)))))
      .orderBy(asc(stepAttempts.runId), asc(stepAttempts.seq), asc(stepAttempts.attempt)),
  ] as const);
  for (const run of runRows) out.set(run.id, { run, steps: [], attempts: [] });
  for (const s of stepRows) out.get(s.runId)?.steps.push(s);
  for (const a of attemptRows) out.get(a.runId)?.attempts.push(a);
  return out;
}

/** What changes whenever a run moves (claim, commit, failure, wait, signal, cancel, a branch's commit), for many runs at once. */
export async function runStamps(db: Db, ids: readonly string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({ id: runs.id, updatedAt: runs.updatedAt, status: runs.status, nextSeq: runs.nextSeq, branches: runs.branches })
    .from(runs)
    .where(inArray(runs.id, [...ids]));
  // `branches` counts down as a fan-out's branches commit (they do not touch the run's other columns).
  return new Map(rows.map((r) => [r.id, `${r.updatedAt.getTime()}|${r.status}|${r.nextSeq}|${r.branches}`]));
}
