/**
 * The event bus over Redis pub/sub: one subscriber connection per process, shared
 * by all listeners (a channel is subscribed while it has at least one listener).
 */
import { EventEmitter } from 'node:events';
import type { RedisClient } from '../queue/redis.ts';
import { controlChannel, runChannel } from '../queue/names.ts';
import type { ControlMessage, EventBus } from './bus.ts';
import { throttleChanged } from './throttle.ts';

/** A run's `changed` notices: at most one per this many ms, the last never dropped (events/throttle.ts). */
const CHANGED_WINDOW_MS = 10;

export function createRedisBus(opts: { client: RedisClient; prefix: string; onError?: (err: Error) => void }): EventBus {
  const { client, prefix } = opts;
  const local = new EventEmitter();
  local.setMaxListeners(0);
  let subscriber: Promise<RedisClient> | undefined;

  const getSubscriber = () =>
    (subscriber ??= (async () => {
      const sub = client.duplicate();
      sub.on('error', (err: Error) => opts.onError?.(err));
      await sub.connect();
      return sub as RedisClient;
    })());

  const onMessage = (message: string, channel: string) => {
    try {
      local.emit(channel, JSON.parse(message));
    } catch {
      // Not ours: ignore.
    }
  };

  async function listen<T>(channel: string, typed: (value: T) => void): Promise<() => Promise<void>> {
    const listener = typed as (...args: unknown[]) => void;
    const sub = await getSubscriber();
    const first = local.listenerCount(channel) === 0;
    local.on(channel, listener);
    if (first) await sub.subscribe(channel, onMessage);
    return async () => {
      local.off(channel, listener);
      if (local.listenerCount(channel) === 0) await sub.unsubscribe(channel).catch(() => {});
    };
  }

  const notices = throttleChanged((runId, notice) => {
    client.publish(runChannel(prefix, runId), JSON.stringify(notice)).catch(() => {});
  }, CHANGED_WINDOW_MS);

  return {
    kind: 'redis',
    publish: notices.publish,
    subscribe(runId, listener) {
      return listen(runChannel(prefix, runId), listener);
    },
    async publishControl(message: ControlMessage) {
      await client.publish(controlChannel(prefix), JSON.stringify(message));
    },
    onControl(listener) {
      return listen(controlChannel(prefix), listener);
    },
    async close() {
      notices.flush();
      local.removeAllListeners();
      const s = subscriber;
      subscriber = undefined;
      if (s) await s.then((c) => c.destroy()).catch(() => {});
    },
  };
}
