/**
 * The events of GET /v1/runs/:id/events (Server-Sent Events; the stream itself is
 * streams/event-stream.ts).
 *
 * Step and run events are derived from the rows (step_attempts, steps, runs) by
 * `deriveEvents`, so they are durable and replayable: each carries an id
 * `seq-attempt-phase`, and a reconnect with `Last-Event-ID` gets every later event,
 * with no gap. Every attempt has its own events, so a client that connects late sees
 * each failed attempt's `step.failed`, not only the outcome of the last one. The bus
 * only says when to look again and carries token deltas, which are live only (no id).
 *
 * Events: step.started, step.completed, step.failed, step.delta, run.waiting, and a
 * final run.finished, after which the stream ends.
 *
 * Branches of a fan-out run side by side, so their events do not arrive in id order:
 * branch 2 may start before branch 1. A stream therefore sends every event it has
 * not sent yet (not only those after the last one sent), and a `Last-Event-ID` inside a
 * fan-out resumes from the fan-out step: that fan-out's branch events come again, with
 * the same ids (a client dedupes on them), and none is lost (streams/run-watchers.ts).
 */
import type { Step, StepAttempt } from '../../schema/tables.ts';
import { type RunWithSteps, attemptView, stepView } from '../store/runs.ts';

export interface DerivedEvent {
  id: string;
  key: [number, number, number];
  event: string;
  data: unknown;
}

/** Where an event sits in a run's history: [seq, attempt, phase]; ids compare in this order. */
export type EventKey = [number, number, number];

export function parseId(id: string | undefined): [number, number, number] | null {
  const m = /^(\d+)-(\d+)-(\d+)$/.exec(id ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export const isAfter = (a: EventKey, b: EventKey) =>
  a[0] !== b[0] ? a[0] > b[0] : a[1] !== b[1] ? a[1] > b[1] : a[2] > b[2];

/** The events of one attempt of a step: started, then completed or failed once it ended. */
function attemptEvents(runId: string, s: Step, a: StepAttempt): DerivedEvent[] {
  const view = { runId, ...stepView(s), ...attemptView(a), nextStep: a.status === 'succeeded' ? s.nextStep : null };
  const mk = (phase: number, event: string): DerivedEvent => ({
    id: `${s.seq}-${a.attempt}-${phase}`,
    key: [s.seq, a.attempt, phase],
    event,
    data: view,
  });
  const out = [mk(0, 'step.started')];
  if (a.status === 'succeeded') out.push(mk(1, 'step.completed'));
  if (a.status === 'failed') out.push(mk(1, 'step.failed'));
  return out;
}

/** Every durable event of a run, in id order, from its rows. */
export function deriveEvents(runId: string, full: RunWithSteps): DerivedEvent[] {
  // Attempts by seq, once: a run with thousands of steps is derived in linear time.
  const bySeq = new Map<number, StepAttempt[]>();
  for (const a of full.attempts) {
    const list = bySeq.get(a.seq);
    if (list) list.push(a);
    else bySeq.set(a.seq, [a]);
  }
  const events = full.steps.flatMap((s) => {
    const attempts = bySeq.get(s.seq) ?? [];
    // A branch still queued for its first attempt has nothing to tell yet.
    if (attempts.length === 0 && s.status === 'queued') return [];
    // A step recorded before attempts had rows of their own stands for its one attempt.
    return (attempts.length > 0 ? attempts : [s]).flatMap((a) => attemptEvents(runId, s, a));
  });
  const { run } = full;
  if (run.status === 'waiting') {
    events.push({
      id: `${run.nextSeq}-0-2`,
      key: [run.nextSeq, 0, 2],
      event: 'run.waiting',
      // `pending`: what the run waits for (an agent's tool call awaiting approval), as GET /v1/runs/:id shows it.
      data: { runId, signal: run.waitSignal, wakeAt: run.wakeAt, pending: run.waitRequest ?? null },
    });
  }
  return events;
}
