/**
 * GET /v1/runs/:id/events as Server-Sent Events, bounded (README "Limits"):
 *
 * - a stream takes one of its tenant's BATON_MAX_STREAMS_PER_TENANT slots
 *   (stream-slots.ts), or is refused with 429 `too_many_streams` and Retry-After;
 * - it is fed by the run's shared watcher (run-watchers.ts), never by its own polling;
 * - it ends after BATON_STREAM_MAX_S, and the client resumes with Last-Event-ID
 *   (EventSource does so by itself);
 * - it ends within BATON_AUTH_CACHE_MS of its credential being revoked.
 *
 * The credential is whatever authenticated the request (an API key today); anything
 * that can say which tenant it is and whether it is still valid can open a stream.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Run } from '../../../schema/tables.ts';
import { BatonError } from '../../errors.ts';
import type { Platform } from '../../platform.ts';
import type { Credential } from '../auth.ts';
import { type EventKey, parseId } from '../events.ts';
import { type RunWatchers, createRunWatchers } from './run-watchers.ts';
import { type StreamSlots, createStreamSlots } from './stream-slots.ts';

const KEEPALIVE_MS = 15_000;
const RETRY_AFTER_MS = 5000;

export interface EventStreams {
  watchers: RunWatchers;
  slots: StreamSlots;
  close(): Promise<void>;
}

/** One per API app: the shared watchers and this process's stream slots. */
export function createEventStreams(p: Platform): EventStreams {
  const watchers = createRunWatchers(p);
  const slots = createStreamSlots(p);
  return {
    watchers,
    slots,
    async close() {
      slots.close();
      await watchers.close();
    },
  };
}

type Message = { id?: string; event: string; data: string };

/** The stream of `runId` (already checked to belong to `credential.tenant`). */
export async function runEvents(p: Platform, streams: EventStreams, c: Context, runId: string, credential: Credential): Promise<Response> {
  const lastEventId = c.req.header('last-event-id') ?? c.req.query('lastEventId');
  // After `end` only the final event is due again.
  const cursor: EventKey = lastEventId === 'end' ? [Infinity, 0, 0] : (parseId(lastEventId) ?? [-1, 0, 0]);
  const slot = await streams.slots.acquire(credential.tenant);
  if (!slot) {
    const limit = p.config.limits.streamsPerTenant;
    throw new BatonError('too_many_streams', `tenant "${credential.tenant}" has ${limit} event streams open (BATON_MAX_STREAMS_PER_TENANT); close one or retry later`, {
      details: { limit, env: 'BATON_MAX_STREAMS_PER_TENANT' },
      retryAfterMs: RETRY_AFTER_MS,
    });
  }
  const { streamMaxMs, authCacheMs } = p.config.limits;
  const checkMs = Math.min(1000, authCacheMs);
  return streamSSE(c, async (stream) => {
    try {
      const queue: Message[] = [];
      let finished: { run: Run | null } | null = null;
      let closed = false;
      let wake: (() => void) | null = null;
      const kick = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      stream.onAbort(() => {
        closed = true;
        kick();
      });
      // A client that left before the listener existed would otherwise keep the stream for its whole life.
      if (stream.aborted) return;
      const stop = await streams.watchers.follow(runId, cursor, {
        event: (e, data) => {
          queue.push({ id: e.id, event: e.event, data });
          kick();
        },
        delta: (seq, text) => {
          queue.push({ event: 'step.delta', data: JSON.stringify({ runId, seq, text }) });
          kick();
        },
        finished: (run) => {
          finished = { run };
          kick();
        },
      });
      const deadline = Date.now() + streamMaxMs;
      let lastWrite = Date.now();
      let nextCheck = Date.now() + checkMs;
      try {
        while (!closed) {
          if (queue.length > 0) {
            // Everything due in one write (JSON has no raw newline, so `data` is one line).
            await stream.write(queue.splice(0).map((m) => `${m.id === undefined ? '' : `id: ${m.id}\n`}event: ${m.event}\ndata: ${m.data}\n\n`).join(''));
            lastWrite = Date.now();
          }
          const end = finished as { run: Run | null } | null;
          if (end) {
            if (end.run) {
              const { id, status, output, error, finishedAt } = end.run;
              await stream.writeSSE({ id: 'end', event: 'run.finished', data: JSON.stringify({ id, status, output, error, finishedAt }) });
            }
            break;
          }
          const now = Date.now();
          if (now >= deadline) {
            await stream.write(': this stream reached BATON_STREAM_MAX_S; reconnect with Last-Event-ID to go on\n\n');
            break;
          }
          if (now >= nextCheck) {
            nextCheck = now + checkMs;
            if (!(await credential.valid())) {
              await stream.write(': the credential of this stream was revoked\n\n');
              break;
            }
          }
          if (now - lastWrite > KEEPALIVE_MS) {
            await stream.write(': keep-alive\n\n');
            lastWrite = now;
          }
          if (queue.length === 0 && !closed && !(finished as unknown)) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, Math.max(1, Math.min(checkMs, deadline - now)));
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = null;
          }
        }
      } finally {
        stop();
      }
    } finally {
      slot.release();
    }
  });
}
