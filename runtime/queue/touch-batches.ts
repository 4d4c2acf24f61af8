/**
 * A worker's lease heartbeat touches the stream entry of every step in flight at once:
 * those touches go as one `touchMany` per function (one XCLAIM) instead of one command each.
 */
import type { Queue } from './queue.ts';
import { groupInTurn } from './turn-groups.ts';

/** Most entries in one command. */
const MAX_BATCH = 500;

export type Touch = (delivery: { function: string; id: string }) => Promise<void>;

export function batchTouches(queue: Queue, consumer: string): Touch {
  const send = groupInTurn<{ function: string; id: string }>(
    (d) => d.function,
    (batch) => queue.touchMany(batch[0].function, batch.map((d) => d.id), consumer),
    MAX_BATCH,
  );
  return (d) => send({ function: d.function, id: d.id });
}
