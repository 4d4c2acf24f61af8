/**
 * In-process queue for the embedded mode (`npm start` without REDIS_URL): the same
 * semantics as the Redis one — pending until acked, reclaim after idle, delayed
 * messages on a timer list — in one process. It starts empty; the worker's start-up
 * sweep rebuilds it from the live runs in PostgreSQL.
 */
import type { Delivery, Queue, StepMessage } from './queue.ts';

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

    async reclaim(functions, consumer, minIdleMs, max) {
      const out: Delivery[] = [];
      const now = Date.now();
      for (const p of pending.values()) {
        if (out.length >= max) break;
        if (!functions.includes(p.delivery.function) || now - p.deliveredAt < minIdleMs) continue;
        p.consumer = consumer;
        p.deliveredAt = now;
        out.push(p.delivery);
      }
      return out;
    },

    async ack(d) {
      pending.delete(d.id);
    },

    async touch(d) {
      const p = pending.get(d.id);
      if (p) p.deliveredAt = Date.now();
    },

    async promoteDue() {
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

    async ping() {},

    async close() {
      closed = true;
      wake();
    },
  };
}
