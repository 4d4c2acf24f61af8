/**
 * One watcher per run, shared by every event stream of that run in this process.
 *
 * A watcher subscribes to the run's bus channel once and reads the run's rows when a
 * notice says it changed, coalescing bursts (at most one read in flight per run, and
 * one more if notices came during it). It reads only from the lowest seq that may still
 * change (the run's next seq, or an attempt still running): earlier steps are final and
 * were sent already. A notice can be lost, so a single poll checks the change stamps of
 * all watched runs in one query every POLL_MS and reads the runs whose stamp moved.
 * Database work therefore follows how much the runs change, not how many clients watch.
 *
 * A follower joining late reads its own catch-up once, from the seq of its Last-Event-ID
 * on, while live events are buffered for it; then it is fed live like the others.
 */
import type { RunNotice } from '../../events/bus.ts';
import type { Platform } from '../../platform.ts';
import { readRunSince, runStamps } from '../../store/run-events.ts';
import type { Run } from '../../../schema/tables.ts';
import { type DerivedEvent, type EventKey, deriveEvents, isAfter } from '../events.ts';

const POLL_MS = 1000;
/** The first seq a cursor may still be missing (`end` resumes past every step). */
const seqOf = (k: EventKey) => (Number.isFinite(k[0]) ? Math.max(0, k[0]) : 2_147_483_647);
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export interface FollowerSink {
  /** A durable event, in id order, after the follower's cursor. */
  event(e: DerivedEvent): void;
  /** A token delta of a streaming LLM step (live only, no id). */
  delta(seq: number, text: string): void;
  /** The run ended (its final state), or disappeared (null). */
  finished(run: Run | null): void;
}

interface Follower {
  sink: FollowerSink;
  last: EventKey;
  /** Live events held back while the follower reads its catch-up. */
  buffered: DerivedEvent[] | null;
  done: boolean;
}

interface Watcher {
  runId: string;
  followers: Set<Follower>;
  fromSeq: number;
  stamp: string | null;
  reading: Promise<void> | null;
  again: boolean;
  unsubscribe: Promise<() => Promise<void>>;
  ended: boolean;
}

export interface RunWatchers {
  /** Feeds `sink` every event of `runId` after `cursor`; answers a function that stops it. */
  follow(runId: string, cursor: EventKey, sink: FollowerSink): Promise<() => void>;
  /** Runs watched now (for tests and metrics). */
  readonly watching: number;
  /** Row reads done so far (catch-ups, change reads, polls). */
  readonly reads: number;
  close(): Promise<void>;
}

export function createRunWatchers(p: Platform): RunWatchers {
  const watchers = new Map<string, Watcher>();
  let poller: NodeJS.Timeout | null = null;
  let reads = 0;

  const deliver = (f: Follower, e: DerivedEvent) => {
    if (f.done || !isAfter(e.key, f.last)) return;
    f.last = e.key;
    f.sink.event(e);
  };

  const finish = (w: Watcher, run: Run | null) => {
    w.ended = true;
    for (const f of w.followers) {
      if (f.buffered) continue; // its catch-up read sees the end itself
      f.done = true;
      f.sink.finished(run);
    }
    drop(w);
  };

  const drop = (w: Watcher) => {
    if (watchers.get(w.runId) !== w) return;
    watchers.delete(w.runId);
    void w.unsubscribe.then((off) => off()).catch(() => {});
    if (watchers.size === 0 && poller) {
      clearInterval(poller);
      poller = null;
    }
  };

  async function readOnce(w: Watcher): Promise<void> {
    reads++;
    const full = await p.withDb(() => readRunSince(p.db, w.runId, w.fromSeq), 3000).catch(() => undefined);
    if (full === undefined) return; // the database is away: the next notice or poll tries again
    if (full === null) return finish(w, null);
    const events = deriveEvents(w.runId, full);
    for (const e of events) {
      for (const f of w.followers) {
        if (f.buffered) f.buffered.push(e);
        else deliver(f, e);
      }
    }
    const running = full.attempts.filter((a) => a.status === 'running').map((a) => a.seq);
    w.fromSeq = Math.max(w.fromSeq, Math.min(full.run.nextSeq, ...running));
    if (TERMINAL.has(full.run.status)) finish(w, full.run);
  }

  /** Reads now, or once more after the read in flight (bursts of notices become one or two reads). */
  function read(w: Watcher): void {
    if (w.ended) return;
    if (w.reading) {
      w.again = true;
      return;
    }
    w.reading = (async () => {
      do {
        w.again = false;
        await readOnce(w);
      } while (w.again && !w.ended);
      w.reading = null;
    })();
  }

  async function poll(): Promise<void> {
    const list = [...watchers.values()];
    if (list.length === 0) return;
    reads++;
    const stamps = await p.withDb(() => runStamps(p.db, list.map((w) => w.runId)), 3000).catch(() => null);
    if (!stamps) return;
    for (const w of list) {
      const stamp = stamps.get(w.runId) ?? null;
      if (stamp !== w.stamp) {
        w.stamp = stamp;
        read(w);
      }
    }
  }

  function watcherOf(runId: string): Watcher {
    let w = watchers.get(runId);
    if (w) return w;
    const created: Watcher = {
      runId,
      followers: new Set(),
      fromSeq: 0,
      stamp: null,
      reading: null,
      again: false,
      ended: false,
      unsubscribe: p.events
        .subscribe(runId, (notice: RunNotice) => {
          if (notice.type === 'delta') {
            for (const f of created.followers) if (!f.done) f.sink.delta(notice.seq, notice.text);
          } else {
            read(created);
          }
        })
        .catch(() => async () => {}),
    };
    w = created;
    watchers.set(runId, w);
    if (!poller) {
      poller = setInterval(() => void poll(), POLL_MS);
      poller.unref();
    }
    return w;
  }

  return {
    get watching() {
      return watchers.size;
    },
    get reads() {
      return reads;
    },
    async follow(runId, cursor, sink) {
      const w = watcherOf(runId);
      const f: Follower = { sink, last: cursor, buffered: [], done: false };
      w.followers.add(f);
      const stop = () => {
        f.done = true;
        w.followers.delete(f);
        if (w.followers.size === 0) drop(w);
      };
      await w.unsubscribe; // subscribed before the catch-up read: nothing falls between them
      const end = (run: Run | null) => {
        f.done = true;
        sink.finished(run);
        stop();
      };
      // Catch-up: this follower's own read, from the seq of its cursor on; retried a few times while the
      // database is away, then the stream ends without a final event and the client resumes later.
      let full: Awaited<ReturnType<typeof readRunSince>> | undefined;
      for (let tries = 0; !f.done && tries < 3; tries++) {
        reads++;
        full = await p.withDb(() => readRunSince(p.db, runId, seqOf(f.last)), 3000).catch(() => undefined);
        if (full !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      if (f.done) return stop;
      if (full === undefined || full === null) {
        end(null);
        return stop;
      }
      const held = f.buffered ?? [];
      f.buffered = null;
      for (const e of deriveEvents(runId, full)) deliver(f, e);
      for (const e of held) deliver(f, e);
      if (TERMINAL.has(full.run.status)) end(full.run);
      else if (w.ended) {
        // The run ended while this follower caught up (the watcher left it to us): read the end now.
        const last = await p.withDb(() => readRunSince(p.db, runId, seqOf(f.last)), 3000).catch(() => null);
        for (const e of last ? deriveEvents(runId, last) : []) deliver(f, e);
        end(last?.run ?? null);
      }
      return stop;
    },
    async close() {
      for (const w of [...watchers.values()]) drop(w);
    },
  };
}
