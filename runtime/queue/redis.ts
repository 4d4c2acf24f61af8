/**
 * Redis Streams queue: one stream and consumer group per function
 * (XADD / XREADGROUP / XACK; XPENDING … IDLE and XCLAIM take over a dead consumer's
 * messages), and per function one sorted set of delayed messages that `promoteDue`
 * moves onto its stream. Acked entries stay until `housekeep` trims them (XTRIM MINID). Blocking reads use their own connection,
 * since a BLOCK stalls every other command queued on the same socket.
 */
import { createClient } from '@redis/client';
import type { Delivery, Housekeeping, PendingEntry, Queue, QueueDepth, StepMessage } from './queue.ts';
import { CONSUMER_GROUP, delayedKey, streamKey } from './names.ts';

export type RedisClient = ReturnType<typeof createClient>;

/** How long a command may wait for Redis's answer before it fails (the default of connectRedis). */
export const COMMAND_TIMEOUT_MS = 5000;

/** `promise`, or a rejection once `ms` have passed without its answer. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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
    commandOptions: { timeout: opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS },
    socket: { connectTimeout: 3000, reconnectStrategy: (retries) => Math.min(2000, 50 * 2 ** retries) },
  });
  client.on('error', (err: Error) => opts.onError?.(err));
  await client.connect();
  return client as RedisClient;
}

// Every key a script touches is declared in KEYS (a function's delayed set and its stream
// share the function's hash tag), so the scripts run on Redis Cluster too.

// Delayed members are "runId|seq": the same wake-up scheduled twice is one member
// (so they carry no trace; the step takes its run's from runs.trace_context).
const SCHEDULE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])`;

// KEYS[1] the function's delayed set, KEYS[2] its stream.
const PROMOTE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local run, seq = string.match(member, '^([^|]+)|([^|]+)$')
  if run then redis.call('XADD', KEYS[2], '*', 'run_id', run, 'seq', seq) end
  redis.call('ZREM', KEYS[1], member)
end
return #due`;

// KEYS[1] a stream; ARGV[1] its group, ARGV[2..] consumers to remove. Checked and removed
// in one step, so a consumer that took a message meanwhile keeps it (DELCONSUMER would
// drop its pending entries for good).
const REMOVE_IDLE_CONSUMERS = `
local removed = {}
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[i]) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[i])
    removed[#removed + 1] = ARGV[i]
  end
end
return removed`;

/** The stream id right after `id` ("ms-seq"). */
function nextId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${(BigInt(seq ?? '0') + 1n).toString()}`;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : (as ?? 0n) < (bs ?? 0n) ? -1 : 1;
}

export interface RedisQueueOptions {
  client: RedisClient;
  prefix: string;
  /** For commands sent without node-redis's own timeout (publishMany's pipeline, handOn's MULTI); COMMAND_TIMEOUT_MS by default. */
  commandTimeoutMs?: number;
  onError?: (err: Error) => void;
}

export function createRedisQueue(opts: RedisQueueOptions): Queue {
  const { client, prefix } = opts;
  const commandTimeoutMs = opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
  let blocking: Promise<RedisClient> | undefined;

  /** Creates the function's stream and group unless they exist; true when it created the group. */
  async function ensureGroup(fn: string): Promise<boolean> {
    try {
      // From '0': after a flush, messages published before the group existed are still delivered.
      await client.xGroupCreate(streamKey(prefix, fn), CONSUMER_GROUP, '0', { MKSTREAM: true });
      return true;
    } catch (err) {
      if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
      return false;
    }
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

  const fields = (m: StepMessage) => {
    const f: Record<string, string> = { run_id: m.runId, seq: String(m.seq) };
    if (m.trace) f.trace = m.trace;
    return f;
  };
  const isNoGroup = (err: unknown) => String((err as Error)?.message).startsWith('NOGROUP');

  return {
    kind: 'redis',

    async prepare(functions) {
      for (const fn of functions) await ensureGroup(fn);
    },

    async publish(fn, message: StepMessage, delayMs = 0) {
      if (delayMs > 0) {
        await client.eval(SCHEDULE, {
          keys: [delayedKey(prefix, fn)],
          arguments: [`${message.runId}|${message.seq}`, String(Math.ceil(delayMs))],
        });
        return;
      }
      await client.xAdd(streamKey(prefix, fn), '*', fields(message));
    },

    async publishMany(fn, messages) {
      if (messages.length === 0) return;
      const key = streamKey(prefix, fn);
      // Separate XADDs in one write, not a script or MULTI: Redis serves a blocked reader
      // after each command, so a burst is shared by the waiting workers as when published one
      // by one. One timer for the lot, instead of node-redis's AbortSignal.timeout per command.
      const pipeline = client.multi();
      for (const m of messages) pipeline.xAdd(key, '*', fields(m));
      await within(pipeline.execAsPipeline(), commandTimeoutMs, `publishing ${messages.length} wake-ups`);
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
        const fnOf = new Map(functions.map((fn) => [streamKey(prefix, fn), fn]));
        const res = await reader.xReadGroup(CONSUMER_GROUP, consumer, streams, { COUNT: max, BLOCK: blockMs });
        if (!res) return [];
        return (res as Array<{ name: string; messages: Array<{ id: string; message: Record<string, string> }> }>).flatMap(
          (s) => toDeliveries(fnOf.get(s.name) ?? s.name, s.messages),
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

    async idle(functions, minIdleMs, max) {
      const out: PendingEntry[] = [];
      for (const fn of functions) {
        try {
          const entries = await client.xPendingRange(streamKey(prefix, fn), CONSUMER_GROUP, '-', '+', max, { IDLE: minIdleMs });
          for (const e of entries) out.push({ function: fn, id: e.id, consumer: e.consumer, idleMs: e.millisecondsSinceLastDelivery });
        } catch (err) {
          if (!isNoGroup(err)) throw err;
          await ensureGroup(fn);
        }
      }
      return out;
    },

    async claim(entries, consumer, minIdleMs) {
      const byFunction = new Map<string, string[]>();
      for (const e of entries) byFunction.set(e.function, [...(byFunction.get(e.function) ?? []), e.id]);
      const out: Delivery[] = [];
      for (const [fn, ids] of byFunction) {
        try {
          // Only entries still idle that long: another worker that took one first has reset its idle time.
          const res = await client.xClaim(streamKey(prefix, fn), CONSUMER_GROUP, consumer, minIdleMs, ids);
          out.push(...toDeliveries(fn, res));
        } catch (err) {
          if (!isNoGroup(err)) throw err;
          await ensureGroup(fn);
        }
      }
      return out;
    },

    async ack(d) {
      // No XDEL: deleting entries leaves tombstones that make XINFO GROUPS report the
      // lag as nil (KEDA reads 0). Acked entries are trimmed by housekeep().
      await client.xAck(streamKey(prefix, d.function), CONSUMER_GROUP, d.id);
    },

    async handOn(d, next) {
      const key = streamKey(prefix, d.function);
      // A MULTI gets no node-redis command timeout: without one, a Redis that stops answering would hold the step forever.
      await within(client.multi().xAdd(key, '*', fields(next)).xAck(key, CONSUMER_GROUP, d.id).exec(), commandTimeoutMs, 'the hand-on');
    },

    async touchMany(fn, ids, consumer) {
      if (ids.length > 0) await client.xClaimJustId(streamKey(prefix, fn), CONSUMER_GROUP, consumer, 0, [...ids]);
    },

    async promoteDue(functions) {
      // Issued together, so node-redis sends them in one write.
      const moved = await Promise.all(
        functions.map((fn) => client.eval(PROMOTE, { keys: [delayedKey(prefix, fn), streamKey(prefix, fn)], arguments: ['200'] })),
      );
      return moved.reduce<number>((n, m) => n + Number(m), 0);
    },

    async housekeep(functions, { deadConsumerMs }) {
      const report: Housekeeping = { groupsCreated: [], trimmed: 0, consumersRemoved: [] };
      for (const fn of functions) {
        const key = streamKey(prefix, fn);
        // After a restart or FLUSHALL the group is gone: KEDA's scaler errors (NOGROUP) and
        // cannot scale to zero or from it until someone creates it again.
        if (await ensureGroup(fn)) report.groupsCreated.push(fn);
        // The last delivered id first, the pending ones after: an entry delivered between the two
        // reads is then either pending in the second or after the first, never trimmed. (Read the
        // other way round, it was trimmed while pending, and Redis drops a trimmed entry from the
        // pending list at the next XCLAIM: the message was lost, the run left to the sweeper.)
        const groups = (await client.xInfoGroups(key)) as Array<Record<string, unknown>>;
        const summary = await client.xPending(key, CONSUMER_GROUP);
        if (groups.length === 1) {
          // Trim what every consumer is done with: entries before the oldest pending one and
          // at most up to the last delivered one (later entries wait to be read).
          let minId = nextId(String(groups[0]['last-delivered-id']));
          if (summary.firstId && compareIds(summary.firstId, minId) < 0) minId = summary.firstId;
          report.trimmed += await client.xTrim(key, 'MINID', minId);
        }
        const consumers = (await client.xInfoConsumers(key, CONSUMER_GROUP)) as Array<Record<string, unknown>>;
        const idle = consumers.filter((c) => Number(c.pending) === 0 && Number(c.idle) > deadConsumerMs).map((c) => String(c.name));
        if (idle.length) {
          const removed = await client.eval(REMOVE_IDLE_CONSUMERS, { keys: [key], arguments: [CONSUMER_GROUP, ...idle] });
          report.consumersRemoved.push(...(removed as string[]));
        }
      }
      return report;
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
    },
  };
}
