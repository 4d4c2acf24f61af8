/**
 * One watcher per run, shared by every event stream of that run in this process.
 *
 * A watcher subscribes to the run's bus channel once and marks the run when a notice
 * says it changed; every TICK_MS at most, the runs marked since are read together, in
 * three statements whatever their number, and each only from the lowest seq that may
 * still change (the run's next seq, or a step or attempt still open): earlier steps are
 * final and were sent already. A notice can be lost, so a single poll checks the change
 * stamps of all watched runs in one query every POLL_MS and marks the runs whose stamp
 * moved. The database's work is therefore about flat: it depends neither on how many
 * clients watch nor on how many runs they watch, only on the tick.
 *
 * A follower joining late reads its own catch-up once, from the seq of its Last-Event-ID
 * on, while live events are buffered for it; then it is fed live like the others.
 *
 * Branches of a fan-out end in any order, so a follower is sent every event it has not
 * been sent (not only those after the last one), tracked by id above a floor; the floor
 * rises past steps that are final, so the ids it keeps stay few. A Last-Event-ID inside
 * a fan-out resumes from the fan-out step (events/README "Fan-out and join").
 */
import type { RunNotice } from '../../events/bus.ts';
import type { Platform } from '../../platform.ts';
import { readRunSince, readRunsSince, runStamps } from '../../store/run-events.ts';
import type { RunWithSteps } from '../../store/runs.ts';
import type { Run } from '../../../schema/tables.ts';
import { type DerivedEvent, type EventKey, deriveEvents, isAfter } from '../events.ts';

const POLL_MS = 1000;
/** Runs that changed are read together, at most this often: a busy run costs a read per tick, not per notice. */
const TICK_MS = 250;
/** The first seq a cursor may still be missing (`end` resumes past every step). */
const seqOf = (k: EventKey) => (Number.isFinite(k[0]) ? Math.max(0, k[0] + (k[1] === Infinity ? 1 : 0)) : 2_147_483_647);
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * The lowest seq whose events may still change: the run's next seq, or a step (a
 * fan-out's branch, queued or running) or attempt still open below it.
 */
function firstOpenSeq(full: RunWithSteps): number {
  const open = [
    ...full.steps.filter((s) => s.status === 'queued' || s.status === 'running').map((s) => s.seq),
    ...full.attempts.filter((a) => a.status === 'running').map((a) => a.seq),
  ];
  return Math.min(full.run.nextSeq, ...open);
}

export interface FollowerSink {
  /** A durable event the follower was not sent yet; `data` is its JSON (serialised once for all followers). */
  event(e: DerivedEvent, data: string): void;
  /** A token delta of a streaming LLM step (live only, no id). */
  delta(seq: number, text: string): void;
  /** The run ended (its final state), or disappeared (null). */
  finished(run: Run | null): void;
}

interface Follower {
  sink: FollowerSink;
  /** Events at or before it were seen by the client. */
  floor: EventKey;
  /** Ids above the floor sent already. */
  sent: Map<string, number>;
  /** Live events held back while the follower reads its catch-up. */
  buffered: DerivedEvent[] | null;
  done: boolean;
}

interface Watcher {
  runId: string;
  followers: Set<Follower>;
  fromSeq: number;
  stamp: string | null;
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
  const dirty = new Set<Watcher>();
  let timer: NodeJS.Timeout | null = null;
  let flushing = false;
  let lastFlush = 0;

  const json = new WeakMap<DerivedEvent, string>();
  const deliver = (f: Follower, e: DerivedEvent) => {
    if (f.done || !isAfter(e.key, f.floor) || f.sent.has(e.id)) return;
    f.sent.set(e.id, e.key[0]);
    let data = json.get(e);
    if (data === undefined) {
      data = JSON.stringify(e.data);
      json.set(e, data);
    }
    f.sink.event(e, data);
  };

  /** Every step below `seq` is final and was sent: forget their ids. */
  const raiseFloor = (f: Follower, seq: number) => {
    if (!isAfter([seq - 1, Infinity, Infinity], f.floor)) return;
    f.floor = [seq - 1, Infinity, Infinity];
    for (const [id, s] of f.sent) if (s < seq) f.sent.delete(id);
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

  /** What one read of a run's rows means for its followers. */
  function apply(w: Watcher, full: RunWithSteps | null): void {
    if (w.ended) return;
    if (full === null) return finish(w, null);
    for (const e of deriveEvents(w.runId, full)) {
      for (const f of w.followers) {
        if (f.buffered) f.buffered.push(e);
        else deliver(f, e);
      }
    }
    w.fromSeq = Math.max(w.fromSeq, firstOpenSeq(full));
    for (const f of w.followers) if (!f.buffered) raiseFloor(f, w.fromSeq);
    if (TERMINAL.has(full.run.status)) finish(w, full.run);
  }

  /** Reads every run marked since the last flush, together (three statements), at most once per TICK_MS. */
  async function flush(): Promise<void> {
    timer = null;
    flushing = true;
    lastFlush = Date.now();
    const batch = [...dirty].filter((w) => !w.ended);
    dirty.clear();
    try {
      if (batch.length === 0) return;
      reads++;
      const rows = await p.withDb(() => readRunsSince(p.db, batch.map((w) => ({ id: w.runId, fromSeq: w.fromSeq }))), 3000).catch(() => undefined);
      if (rows === undefined) {
        // The database is away: look again next tick.
        for (const w of batch) dirty.add(w);
        return;
      }
      for (const w of batch) apply(w, rows.get(w.runId) ?? null);
    } finally {
      flushing = false;
      if (dirty.size > 0) scheduleFlush();
    }
  }

  function scheduleFlush(): void {
    if (timer || flushing) return;
    timer = setTimeout(() => void flush(), Math.max(0, lastFlush + TICK_MS - Date.now()));
    timer.unref();
  }

  /** Marks the run to be read at the next flush (bursts of notices become one read). */
  function read(w: Watcher): void {
    if (w.ended) return;
    dirty.add(w);
    scheduleFlush();
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
      const f: Follower = { sink, floor: cursor, sent: new Map(), buffered: [], done: false };
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
        full = await p.withDb(() => readRunSince(p.db, runId, seqOf(f.floor)), 3000).catch(() => undefined);
        if (full !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
      if (f.done) return stop;
      // Resuming inside a fan-out: its branches' events may have come in any order, so send them all again.
      const at = full?.steps.find((s) => s.seq === f.floor[0]);
      if (full && at?.fanoutSeq != null && at.fanoutSeq < f.floor[0]) {
        const fanoutSeq = at.fanoutSeq;
        f.floor = [fanoutSeq, Infinity, Infinity];
        reads++;
        full = await p.withDb(() => readRunSince(p.db, runId, fanoutSeq + 1), 3000).catch(() => undefined);
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
        const last = await p.withDb(() => readRunSince(p.db, runId, seqOf(f.floor)), 3000).catch(() => null);
        for (const e of last ? deriveEvents(runId, last) : []) deliver(f, e);
        end(last?.run ?? null);
      }
      return stop;
    },
    async close() {
      if (timer) clearTimeout(timer);
      timer = null;
      dirty.clear();
      for (const w of [...watchers.values()]) drop(w);
    },
  };
}
