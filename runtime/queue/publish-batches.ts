/**
 * Wake-ups published in the same turn of the event loop go to the queue together: one
 * `publishMany` per function instead of one command each. The API's run inserts
 * complete in batches (store/run-inserts.ts), so the wake-ups of a batch arrive in the
 * same turn; each caller still learns whether its own wake-up went out.
 *
 * They are sent at `setImmediate`, in the same turn: nothing waits for a timer.
 */
import type { Queue, StepMessage } from './queue.ts';

/** Most wake-ups in one round trip. */
const MAX_BATCH = 500;

interface Waiting {
  message: StepMessage;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export type Publish = (fn: string, message: StepMessage) => Promise<void>;

export function batchPublishes(queue: Queue): Publish {
  let waiting: Map<string, Waiting[]> | null = null;

  const send = (fn: string, batch: Waiting[]) => {
    queue.publishMany(fn, batch.map((w) => w.message)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  };

  const flush = () => {
    const byFunction = waiting ?? new Map<string, Waiting[]>();
    waiting = null;
    for (const [fn, all] of byFunction) {
      for (let i = 0; i < all.length; i += MAX_BATCH) send(fn, all.slice(i, i + MAX_BATCH));
    }
  };

  return (fn, message) =>
    new Promise<void>((resolve, reject) => {
      if (!waiting) {
        waiting = new Map();
        setImmediate(flush);
      }
      let list = waiting.get(fn);
      if (!list) waiting.set(fn, (list = []));
      list.push({ message, resolve, reject });
    });
}
