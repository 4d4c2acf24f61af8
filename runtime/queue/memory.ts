/**
 * In-process queue for the embedded mode (`npm start` without REDIS_URL): the same
 * semantics as the Redis one — pending until acked, taken over after idle, delayed
 * messages on a timer list — in one process. It starts empty; the worker's start-up
 * sweep rebuilds it from the live runs in PostgreSQL.
 */
import type { Delivery, PendingEntry, Queue, StepMessage } from './queue.ts';

interface Pending {
  delivery: Delivery;
  consumer: string;
  deliveredAt: number;
}

export function createMemoryQueue(): Queue {
  const ready = new Map<string, Delivery[]>();
  const pending = new Map<string, Pending>();
  const delayed = new Map<string, { fn: string; message: StepMessage; at: number }>();
  let waiters: Array<() => void> = [];
  let counter = 0;
  let closed = false;

  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  function push(fn: string, message: StepMessage) {
    const d: Delivery = { function: fn, id: `${Date.now()}-${counter++}`, message };
    let list = ready.get(fn);
    if (!list) ready.set(fn, (list = []));
    list.push(d);
    wake();
  }

  function take(functions: readonly string[], consumer: string, max: number): Delivery[] {
    const out: Delivery[] = [];
    for (const fn of functions) {
      const list = ready.get(fn);
      while (list?.length && out.length < max) {
        const d = list.shift() as Delivery;
        pending.set(d.id, { delivery: d, consumer, deliveredAt: Date.now() });
        out.push(d);
      }
    }
    return out;
  }

  return {
    kind: 'memory',
    async prepare() {},

    async publish(fn, message, delayMs = 0) {
      if (delayMs > 0) {
        delayed.set(`${fn}|${message.runId}|${message.seq}`, { fn, message, at: Date.now() + delayMs });
        return;
      }
      push(fn, message);
    },

    async publishMany(fn, messages) {
      for (const message of messages) push(fn, message);
    },

    async read(functions, consumer, max, blockMs) {
      const now = take(functions, consumer, max);
      if (now.length || closed) return now;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, blockMs);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return take(functions, consumer, max);
    },

    async idle(functions, minIdleMs, max) {
      const now = Date.now();
      const out: PendingEntry[] = [];
      for (const fn of functions) {
        let n = 0;
        for (const p of pending.values()) {
          if (n >= max) break;
          if (p.delivery.function !== fn || now - p.deliveredAt < minIdleMs) continue;
          out.push({ function: fn, id: p.delivery.id, consumer: p.consumer, idleMs: now - p.deliveredAt });
          n++;
        }
      }
      return out;
    },

    async claim(entries, consumer, minIdleMs) {
      const now = Date.now();
      const out: Delivery[] = [];
      for (const e of entries) {
        const p = pending.get(e.id);
        if (!p || now - p.deliveredAt < minIdleMs) continue;
        p.consumer = consumer;
        p.deliveredAt = now;
        out.push(p.delivery);
      }
      return out;
    },

    async ack(d) {
      pending.delete(d.id);
    },

    async handOn(d, next) {
      push(d.function, next);
      pending.delete(d.id);
    },

    async touchMany(_fn, ids) {
      for (const id of ids) {
        const p = pending.get(id);
        if (p) p.deliveredAt = Date.now();
      }
    },

    async promoteDue() {
      // One process serves every function in the embedded mode: all of them are due here.
      const now = Date.now();
      let moved = 0;
      for (const [key, item] of delayed) {
        if (item.at > now) continue;
        delayed.delete(key);
        push(item.fn, item.message);
        moved++;
      }
      return moved;
    },

    async depth(functions) {
      return functions.map((fn) => {
        const first = ready.get(fn)?.[0];
        return {
          function: fn,
          lag: ready.get(fn)?.length ?? 0,
          pending: [...pending.values()].filter((p) => p.delivery.function === fn).length,
          // Ids begin with the time they were published.
          oldestMs: first ? Math.max(0, Date.now() - Number(first.id.split('-')[0])) : 0,
        };
      });
    },

    async housekeep() {
      // Nothing to repair or trim: acked messages are gone, and consumers are not recorded.
      return { groupsCreated: [], trimmed: 0, consumersRemoved: [] };
    },

    async ping() {},

    async close() {
      closed = true;
      wake();
    },
  };
}
