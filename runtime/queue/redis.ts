/**
 * Redis Streams queue: one stream and consumer group per function
 * (XADD / XREADGROUP / XACK / XAUTOCLAIM), and one sorted set of delayed messages
 * that `promoteDue` moves onto the streams. Blocking reads use their own connection,
 * since a BLOCK stalls every other command queued on the same socket.
 */
import { createClient } from 'redis';
import type { Delivery, Queue, QueueDepth, StepMessage } from './queue.ts';
import { CONSUMER_GROUP, delayedKey, streamKey } from './names.ts';

export type RedisClient = ReturnType<typeof createClient>;

export interface RedisConnectOptions {
  url: string;
  onError?: (err: Error) => void;
  commandTimeoutMs?: number;
}

/** A client that fails fast while Redis is unreachable (no offline queue), and reconnects by itself. */
export async function connectRedis(opts: RedisConnectOptions): Promise<RedisClient> {
  const client = createClient({
    url: opts.url,
    disableOfflineQueue: true,
    commandOptions: { timeout: opts.commandTimeoutMs ?? 5000 },
    socket: { connectTimeout: 3000, reconnectStrategy: (retries) => Math.min(2000, 50 * 2 ** retries) },
  });
  client.on('error', (err: Error) => opts.onError?.(err));
  await client.connect();
  return client as RedisClient;
}

// Delayed members are "fn|runId|seq": the same wake-up scheduled twice is one member
// (so they carry no trace; the step takes its run's from runs.trace_context).
const SCHEDULE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])`;

const PROMOTE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local fn, run, seq = string.match(member, '^([^|]+)|([^|]+)|([^|]+)$')
  if fn then redis.call('XADD', ARGV[1] .. 'steps:' .. fn, '*', 'run_id', run, 'seq', seq) end
  redis.call('ZREM', KEYS[1], member)
end
return #due`;

export interface RedisQueueOptions {
  client: RedisClient;
  prefix: string;
  onError?: (err: Error) => void;
}

export function createRedisQueue(opts: RedisQueueOptions): Queue {
  const { client, prefix } = opts;
  let blocking: Promise<RedisClient> | undefined;
  const cursors = new Map<string, string>();
  const prepared = new Set<string>();

  async function ensureGroup(fn: string): Promise<void> {
    try {
      // From '0': after a flush, messages published before the group existed are still delivered.
      await client.xGroupCreate(streamKey(prefix, fn), CONSUMER_GROUP, '0', { MKSTREAM: true });
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
    }
    prepared.add(fn);
  }

  function toDeliveries(fn: string, messages: ReadonlyArray<{ id: string; message: Record<string, string> } | null>) {
    const out: Delivery[] = [];
    for (const m of messages) {
      if (!m) continue;
      const message: StepMessage = { runId: m.message.run_id, seq: Number(m.message.seq) };
      if (m.message.trace) message.trace = m.message.trace;
      out.push({ function: fn, id: m.id, message });
    }
    return out;
  }

  function fnOfStream(name: string): string {
    return name.slice(streamKey(prefix, '').length);
  }

  const isNoGroup = (err: unknown) => String((err as Error)?.message).startsWith('NOGROUP');

  return {
    kind: 'redis',

    async prepare(functions) {
      for (const fn of functions) await ensureGroup(fn);
    },

    async publish(fn, message: StepMessage, delayMs = 0) {
      if (delayMs > 0) {
        await client.eval(SCHEDULE, {
          keys: [delayedKey(prefix)],
          arguments: [`${fn}|${message.runId}|${message.seq}`, String(Math.ceil(delayMs))],
        });
        return;
      }
      const fields: Record<string, string> = { run_id: message.runId, seq: String(message.seq) };
      if (message.trace) fields.trace = message.trace;
      await client.xAdd(streamKey(prefix, fn), '*', fields);
    },

    async read(functions, consumer, max, blockMs) {
      if (functions.length === 0 || max <= 0) {
        await new Promise((resolve) => setTimeout(resolve, blockMs));
        return [];
      }
      blocking ??= (async () => {
        const dup = client.duplicate({ commandOptions: { timeout: blockMs + 5000 } });
        dup.on('error', (err: Error) => opts.onError?.(err));
        await dup.connect();
        return dup as RedisClient;
      })();
      const reader = await blocking;
      try {
        const streams = functions.map((fn) => ({ key: streamKey(prefix, fn), id: '>' }));
        const res = await reader.xReadGroup(CONSUMER_GROUP, consumer, streams, { COUNT: max, BLOCK: blockMs });
        if (!res) return [];
        return (res as Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> }> }>).flatMap(
          (s) => toDeliveries(fnOfStream(s.name), s.messages),
        );
      } catch (err) {
        // The stream or its group vanished (FLUSHALL, failover): recreate and carry on.
        if (isNoGroup(err)) {
          for (const fn of functions) await ensureGroup(fn);
          return [];
        }
        throw err;
      }
    },

    async reclaim(functions, consumer, minIdleMs, max) {
      const out: Delivery[] = [];
      for (const fn of functions) {
        if (out.length >= max) break;
        const key = streamKey(prefix, fn);
        try {
          const res = await client.xAutoClaim(key, CONSUMER_GROUP, consumer, minIdleMs, cursors.get(fn) ?? '0-0', {
            COUNT: max - out.length,
          });
          cursors.set(fn, res.nextId);
          out.push(...toDeliveries(fn, res.messages));
          // Entries trimmed from the stream but still pending: nothing left to run, clear them.
          if (res.deletedMessages.length) await client.xAck(key, CONSUMER_GROUP, res.deletedMessages);
        } catch (err) {
          if (!isNoGroup(err)) throw err;
          await ensureGroup(fn);
        }
      }
      return out;
    },

    async ack(d) {
      const key = streamKey(prefix, d.function);
      // XDEL keeps the stream small; deleting only delivered entries keeps KEDA's lag exact.
      await client.multi().xAck(key, CONSUMER_GROUP, d.id).xDel(key, d.id).exec();
    },

    async touch(d, consumer) {
      await client.xClaimJustId(streamKey(prefix, d.function), CONSUMER_GROUP, consumer, 0, d.id);
    },

    async promoteDue() {
      const moved = await client.eval(PROMOTE, { keys: [delayedKey(prefix)], arguments: [prefix, '200'] });
      return Number(moved);
    },

    async depth(functions) {
      const out: QueueDepth[] = [];
      for (const fn of functions) {
        try {
          const key = streamKey(prefix, fn);
          const groups = await client.xInfoGroups(key);
          const g = (groups as Array<Record<string, unknown>>).find((x) => x.name === CONSUMER_GROUP);
          const lag = g?.lag == null ? null : Number(g.lag);
          // The first entry after the group's last delivered one is the oldest waiting; its id is its time.
          let oldestMs = 0;
          if (g && lag !== 0) {
            const next = (await client.xRange(key, `(${String(g['last-delivered-id'])}`, '+', { COUNT: 1 }))?.[0];
            if (next) oldestMs = Math.max(0, Date.now() - Number(next.id.split('-')[0]));
          }
          out.push({ function: fn, lag, pending: Number(g?.pending ?? 0), oldestMs });
        } catch {
          out.push({ function: fn, lag: 0, pending: 0, oldestMs: 0 });
        }
      }
      return out;
    },

    async ping() {
      await client.ping();
    },

    async close() {
      const b = blocking;
      blocking = undefined;
      if (b) await b.then((c) => c.destroy()).catch(() => {});
      prepared.clear();
    },
  };
}
