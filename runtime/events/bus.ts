/**
 * Live notifications. The durable record of a run is its rows; the bus only says
 * "look again" (`changed`), carries token deltas of a streaming LLM step, and tells
 * workers to abort a cancelled run's in-flight call. Losing a notification delays a
 * reader by at most its poll interval; it never loses data.
 */
import { EventEmitter } from 'node:events';

export type RunNotice = { type: 'changed' } | { type: 'delta'; seq: number; text: string };
export type ControlMessage = { type: 'cancel'; runId: string };

export interface EventBus {
  readonly kind: 'redis' | 'memory';
  /** Fire and forget: a notice that cannot be sent is only a delay for readers. */
  publish(runId: string, notice: RunNotice): void;
  subscribe(runId: string, listener: (notice: RunNotice) => void): Promise<() => Promise<void>>;
  publishControl(message: ControlMessage): Promise<void>;
  onControl(listener: (message: ControlMessage) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export function createMemoryBus(): EventBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    kind: 'memory',
    publish(runId, notice) {
      emitter.emit(`run:${runId}`, notice);
    },
    async subscribe(runId, listener) {
      emitter.on(`run:${runId}`, listener);
      return async () => {
        emitter.off(`run:${runId}`, listener);
      };
    },
    async publishControl(message) {
      emitter.emit('control', message);
    },
    async onControl(listener) {
      emitter.on('control', listener);
      return async () => {
        emitter.off('control', listener);
      };
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
