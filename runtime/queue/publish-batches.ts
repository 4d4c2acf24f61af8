/**
 * Wake-ups published in the same turn of the event loop go to the queue together: one
 * `publishMany` per function instead of one command each. The API's run inserts
 * complete in batches (store/run-inserts.ts), so the wake-ups of a batch arrive in the
 * same turn; each caller still learns whether its own wake-up went out.
 */
import type { Queue, StepMessage } from './queue.ts';
import { groupInTurn } from './turn-groups.ts';

/** Most wake-ups in one round trip. */
const MAX_BATCH = 500;

export type Publish = (fn: string, message: StepMessage) => Promise<void>;

export function batchPublishes(queue: Queue): Publish {
  const send = groupInTurn<{ fn: string; message: StepMessage }>(
    (w) => w.fn,
    (batch) => queue.publishMany(batch[0].fn, batch.map((w) => w.message)),
    MAX_BATCH,
  );
  return (fn, message) => send({ fn, message });
}
