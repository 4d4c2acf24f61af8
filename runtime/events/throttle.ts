/**
 * `changed` notices of one run, at most one per window: the first goes at once, the ones
 * that follow within the window go as one when it ends. A notice only says "look again"
 * (events/bus.ts), and a reader looks again at most every quarter second
 * (api/streams/run-watchers.ts), so a chain of quick steps committing every millisecond
 * or two sent that reader a PUBLISH per step for nothing, each on the worker's path to
 * its next commit: a chain's commit round trip took 0.85–0.94 ms without them, 0.89–1.04
 * ms with them (alternated). The last change of a run is always announced, at most two
 * windows late; other notices (token deltas) are not held.
 */
import type { RunNotice } from './bus.ts';

const CHANGED: RunNotice = { type: 'changed' };

export interface ThrottledPublish {
  publish(runId: string, notice: RunNotice): void;
  /** Sends what is held, now (the bus is closing). */
  flush(): void;
}

export function throttleChanged(send: (runId: string, notice: RunNotice) => void, windowMs: number): ThrottledPublish {
  /** Runs that announced a change within the last window: when, and whether another one waits. */
  const windows = new Map<string, { since: number; held: boolean }>();
  let timer: NodeJS.Timeout | null = null;

  // One timer for every run, running only while some run is inside its window.
  const sweep = () => {
    const now = performance.now();
    for (const [runId, w] of windows) {
      if (now - w.since < windowMs) continue;
      if (!w.held) {
        windows.delete(runId);
        continue;
      }
      // The held notice opens the next window.
      w.held = false;
      w.since = now;
      send(runId, CHANGED);
    }
    timer = windows.size > 0 ? setTimeout(sweep, windowMs).unref() : null;
  };

  return {
    publish(runId, notice) {
      if (notice.type !== 'changed') return send(runId, notice);
      const now = performance.now();
      const w = windows.get(runId);
      if (w && now - w.since < windowMs) {
        w.held = true;
        return;
      }
      // No window, or one that has ended before its sweep ran (a timer may fire up to a millisecond
      // early by performance.now(), as its clock counts whole milliseconds, and the sweep then keeps
      // the window a whole window more; or the loop was busy): this notice goes now, covers one held
      // there, and opens the next window.
      windows.set(runId, { since: now, held: false });
      send(runId, notice);
      timer ??= setTimeout(sweep, windowMs).unref();
    },
    flush() {
      if (timer) clearTimeout(timer);
      timer = null;
      for (const [runId, w] of windows) if (w.held) send(runId, CHANGED);
      windows.clear();
    },
  };
}
