/**
 * GET /v1/runs/:id/events — Server-Sent Events.
 *
 * Step and run events are derived from the rows (step_attempts, steps, runs) by
 * `deriveEvents`, so they are durable and replayable: each carries an id
 * `seq-attempt-phase`, and a reconnect with `Last-Event-ID` gets every later event,
 * with no gap. Every attempt has its own events, so a client that connects late sees
 * each failed attempt's `step.failed`, not only the outcome of the last one. The bus
 * only says when to look again (plus a 1 s poll in case a notice is lost) and carries
 * token deltas, which are live only (no id).
 *
 * Events: step.started, step.completed, step.failed, step.delta, run.waiting, and a
 * final run.finished, after which the stream ends.
 *
 * Branches of a fan-out run side by side, so their events do not arrive in id order:
 * branch 2 may start before branch 1. The stream therefore sends every event it has
 * not sent yet (not only those after the last one sent), and a `Last-Event-ID` inside a
 * fan-out resumes from the fan-out step: that fan-out's branch events come again, with
 * the same ids (a client dedupes on them), and none is lost.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Step, StepAttempt } from '../../schema/tables.ts';
import type { Platform } from '../platform.ts';
import type { RunNotice } from '../events/bus.ts';
import { type RunWithSteps, attemptView, getRunWithSteps, stepView } from '../store/runs.ts';

const POLL_MS = 1000;
const KEEPALIVE_MS = 15_000;
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export interface DerivedEvent {
  id: string;
  key: [number, number, number];
  event: string;
  data: unknown;
}

function parseId(id: string | undefined): [number, number, number] | null {
  const m = /^(\d+)-(\d+)-(\d+)$/.exec(id ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

const after = (a: [number, number, number], b: [number, number, number]) =>
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
  const events = full.steps.flatMap((s) => {
    const attempts = full.attempts.filter((a) => a.seq === s.seq);
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
      data: { runId, signal: run.waitSignal, wakeAt: run.wakeAt },
    });
  }
  return events;
}

export function runEvents(p: Platform, c: Context, runId: string) {
  const lastEventId = c.req.header('last-event-id') ?? c.req.query('lastEventId');
  // After `end` only the final event is due again.
  const resumeFrom = lastEventId === 'end' ? ([Infinity, 0, 0] as [number, number, number]) : parseId(lastEventId);
  return streamSSE(c, async (stream) => {
    // Events at or before `floor` were seen by the client; `sent` holds those sent since.
    let floor = resumeFrom ?? ([-1, 0, 0] as [number, number, number]);
    let floorChecked = resumeFrom === null;
    const sent = new Set<string>();
    let wakeUp: (() => void) | null = null;
    const pending: RunNotice[] = [];
    const unsubscribe = await p.events
      .subscribe(runId, (notice) => {
        pending.push(notice);
        wakeUp?.();
      })
      .catch(() => async () => {});
    let closed = false;
    stream.onAbort(() => {
      closed = true;
      wakeUp?.();
    });
    // A client that left while we subscribed aborted before the listener existed;
    // without this the loop would poll for the rest of the run's life.
    if (stream.aborted) closed = true;
    let lastWrite = Date.now();
    try {
      while (!closed) {
        for (const notice of pending.splice(0)) {
          if (notice.type === 'delta') {
            await stream.writeSSE({ event: 'step.delta', data: JSON.stringify({ runId, seq: notice.seq, text: notice.text }) });
            lastWrite = Date.now();
          }
        }
        const full = await p.withDb(() => getRunWithSteps(p.db, runId), 3000).catch(() => null);
        if (full) {
          const { run } = full;
          if (!floorChecked) {
            floorChecked = true;
            // Resuming inside a fan-out: its branches' events may have come in any order, so send them all again.
            const at = full.steps.find((s) => s.seq === floor[0]);
            if (at?.fanoutSeq != null) floor = [at.fanoutSeq, Infinity, Infinity];
          }
          for (const e of deriveEvents(runId, full)) {
            if (!after(e.key, floor) || sent.has(e.id)) continue;
            await stream.writeSSE({ id: e.id, event: e.event, data: JSON.stringify(e.data) });
            sent.add(e.id);
            lastWrite = Date.now();
          }
          if (TERMINAL.has(run.status)) {
            const data = { id: run.id, status: run.status, output: run.output, error: run.error, finishedAt: run.finishedAt };
            await stream.writeSSE({ id: 'end', event: 'run.finished', data: JSON.stringify(data) });
            break;
          }
        }
        if (Date.now() - lastWrite > KEEPALIVE_MS) {
          await stream.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
        if (pending.length === 0 && !closed) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, POLL_MS);
            wakeUp = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wakeUp = null;
        }
      }
    } finally {
      await unsubscribe();
    }
  });
}
