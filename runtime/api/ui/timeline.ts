/**
 * The run's timeline, computed from `steps` and `step_attempts` (the same rows the
 * `step_timeline` view reads): one row per step, each a sequence of segments on the
 * run's time axis, so what the step cost in wall time is visible at a glance:
 *
 *   queued   from when the step became due (the step before it committed, or the run
 *            was created) to its first attempt's start: the queue and the claim;
 *   waiting  the same gap when the step before it parked the run on a signal;
 *   running  each attempt, coloured by its outcome;
 *   backoff  between a failed attempt and the next one.
 *
 * A fan-out's branches are rows of their own (due when the fan-out step ended, side by side on
 * the axis); its join is due when the slowest branch ended. A live run gets one more row for the
 * step it will run next (queued, waiting, or joining branches still open).
 */
import type { Step, StepAttempt } from '../../../schema/tables.ts';
import type { RunWithSteps } from '../../store/runs.ts';

export type SegmentKind = 'queued' | 'waiting' | 'running' | 'succeeded' | 'failed' | 'backoff';

export interface Segment {
  kind: SegmentKind;
  start: number;
  end: number;
  attempt?: number;
  /** For failed attempts: the error's code and message. */
  note?: string;
}

export interface TimelineRow {
  seq: number;
  name: string;
  kind: string | null;
  status: string;
  attempts: number;
  segments: Segment[];
  queuedMs: number;
  waitingMs: number;
  runningMs: number;
  backoffMs: number;
  /** The row stands for the step the run will run next (not started yet). */
  pending: boolean;
  /** A step a replay kept from the run it replays (it ran before this run existed). */
  kept: boolean;
  /** A fan-out's branch: its position 1..K (the fan-out step is the main-line row before it). */
  branch: number | null;
}

export interface Timeline {
  start: number;
  end: number;
  rows: TimelineRow[];
  totals: { queuedMs: number; waitingMs: number; runningMs: number; backoffMs: number; wallMs: number };
}

const LIVE = new Set(['queued', 'running', 'waiting']);
const t = (d: Date | null | undefined) => (d ? new Date(d).getTime() : null);

export function buildTimeline(full: RunWithSteps, now = Date.now()): Timeline {
  const { run } = full;
  // Steps copied into a replay keep their original times, before this run was created.
  const created = t(run.createdAt) ?? now;
  const start = Math.min(created, ...full.attempts.map((a) => t(a.startedAt) ?? now), ...full.steps.map((s) => t(s.startedAt) ?? now));
  const live = LIVE.has(run.status);
  const end = Math.max(start + 1, live ? now : (t(run.finishedAt) ?? t(run.updatedAt) ?? now));
  const rows: TimelineRow[] = [];
  // When the next step is due: the end of the last step on the main line, or, after a fan-out,
  // of its slowest branch (the join waits for all). Branches are due when their fan-out step ended.
  let frontier = start;
  let branchesEnd: number | null = null;
  let prevMain: Step | null = null;
  const endOf = new Map<number, number>();
  for (const step of full.steps) {
    const own = full.attempts.filter((a) => a.seq === step.seq);
    const queuedBranch = own.length === 0 && step.status === 'queued';
    const attempts: Array<StepAttempt | Step> = own.length > 0 ? own : queuedBranch ? [] : [step];
    const isBranch = step.branch !== null && step.branch !== undefined;
    const readyAt = isBranch ? (endOf.get(step.fanoutSeq ?? -1) ?? frontier) : Math.max(frontier, branchesEnd ?? frontier);
    const segments: Segment[] = [];
    const firstStart = t(attempts[0]?.startedAt) ?? (queuedBranch ? Math.max(readyAt, live ? end : readyAt) : readyAt);
    // A replay's first new step became due when the replay was created, not when the kept step before it ended.
    const due = Math.min(firstStart >= created ? Math.max(readyAt, created) : readyAt, firstStart);
    const waited = !isBranch && prevMain?.kind === 'wait' && branchesEnd === null;
    if (firstStart > due) segments.push({ kind: waited ? 'waiting' : 'queued', start: due, end: firstStart });
    let lastEnd: number | null = null;
    for (const a of attempts) {
      const s = t(a.startedAt) ?? firstStart;
      const e = t(a.finishedAt) ?? (a.status === 'running' ? Math.max(s, end) : s + (a.durationMs ?? 0));
      if (lastEnd !== null && s > lastEnd) segments.push({ kind: 'backoff', start: lastEnd, end: s });
      const kind: SegmentKind = a.status === 'running' ? 'running' : a.status === 'failed' ? 'failed' : 'succeeded';
      const err = a.error as { code?: string; message?: string } | null;
      segments.push({ kind, start: s, end: e, attempt: a.attempt, ...(err ? { note: `${err.code ?? 'error'}: ${err.message ?? ''}` } : {}) });
      lastEnd = e;
    }
    // A branch queued again after a failed attempt is in its retry's backoff.
    if (step.status === 'queued' && lastEnd !== null && live && end > lastEnd) segments.push({ kind: 'backoff', start: lastEnd, end });
    const finished = lastEnd ?? firstStart;
    endOf.set(step.seq, finished);
    if (isBranch) branchesEnd = Math.max(branchesEnd ?? finished, finished);
    else {
      frontier = finished;
      branchesEnd = null;
      prevMain = step;
    }
    const kept = (t(step.finishedAt) ?? now) < created;
    rows.push({ ...rowOf(step.seq, step.name, step.kind, step.status, attempts.length, segments, false), kept, branch: isBranch ? (step.branch as number) : null });
  }
  if (live && run.nextStep && !full.steps.some((s) => s.seq === run.nextSeq)) {
    const kind: SegmentKind = run.status === 'waiting' ? 'waiting' : 'queued';
    const openBranches = full.steps.filter((s) => s.branch !== null && s.branch !== undefined && (s.status === 'queued' || s.status === 'running')).length;
    const status =
      run.status === 'waiting' ? `waiting for ${run.waitSignal ?? 'a signal'}` : openBranches > 0 ? `joins ${openBranches} more branch${openBranches > 1 ? 'es' : ''}` : run.wakeAt ? 'retry scheduled' : 'queued';
    const due = Math.max(frontier, branchesEnd ?? frontier, created);
    rows.push({ ...rowOf(run.nextSeq, run.nextStep, null, status, 0, [{ kind, start: due, end: Math.max(due, end) }], true), kept: false, branch: null });
  }
  // Totals are this run's own: a replay's kept steps ran (and were counted) in the run it replays.
  const sum = (k: 'queuedMs' | 'waitingMs' | 'runningMs' | 'backoffMs') => rows.reduce((n, r) => n + (r.kept ? 0 : r[k]), 0);
  const last = Math.max(end, ...rows.flatMap((r) => r.segments.map((s) => s.end)));
  return {
    start,
    end: last,
    rows,
    totals: { queuedMs: sum('queuedMs'), waitingMs: sum('waitingMs'), runningMs: sum('runningMs'), backoffMs: sum('backoffMs'), wallMs: last - created },
  };
}

function rowOf(seq: number, name: string, kind: string | null, status: string, attempts: number, segments: Segment[], pending: boolean): Omit<TimelineRow, 'kept' | 'branch'> {
  const total = (...kinds: SegmentKind[]) => segments.filter((s) => kinds.includes(s.kind)).reduce((n, s) => n + (s.end - s.start), 0);
  return {
    seq,
    name,
    kind,
    status,
    attempts,
    segments,
    queuedMs: total('queued'),
    waitingMs: total('waiting'),
    runningMs: total('running', 'succeeded', 'failed'),
    backoffMs: total('backoff'),
    pending,
  };
}
