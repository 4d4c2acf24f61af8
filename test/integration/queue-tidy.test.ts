/**
 * The Redis queue stays true for KEDA and small for the operator, on a private
 * redis-server (MONITOR and FLUSHALL see only this file's traffic):
 *   - acks do not delete entries, so XINFO GROUPS reports the lag as a number (a nil
 *     lag reads as 0 to KEDA, which then scales a backlog to zero);
 *   - housekeeping trims what every consumer is done with (XTRIM MINID), never an
 *     entry that is pending or not delivered yet;
 *   - a dead consumer leaves its group once its messages were taken over; one that
 *     still holds a message stays;
 *   - after FLUSHALL the housekeeper creates the consumer groups again by itself;
 *   - the Lua scripts touch only keys they declare (so they run on Redis Cluster).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { CONSUMER_GROUP, streamKey } from '../../runtime/queue/names.ts';
import type { Delivery, Queue } from '../../runtime/queue/queue.ts';
import { type RedisClient, connectRedis, createRedisQueue } from '../../runtime/queue/redis.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { startTestPlatform, waitFor } from '../helpers/platform.ts';
import { testPrefix } from '../helpers/redis.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';

let redis: RedisServer;
let client: RedisClient;
before(async () => {
  redis = await startRedisServer();
  client = await connectRedis({ url: redis.url });
});
after(async () => {
  await client?.close();
  await redis?.stop();
});

async function queueOn(tc: { after(fn: () => Promise<void>): void }, fn: string): Promise<{ q: Queue; key: string }> {
  const prefix = testPrefix();
  const own = await connectRedis({ url: redis.url });
  const q = createRedisQueue({ client: own, prefix });
  tc.after(async () => {
    await q.close();
    await own.close();
  });
  await q.prepare([fn]);
  return { q, key: streamKey(prefix, fn) };
}

async function group(key: string): Promise<Record<string, unknown>> {
  const groups = (await client.xInfoGroups(key)) as Array<Record<string, unknown>>;
  const g = groups.find((x) => x.name === CONSUMER_GROUP);
  assert.ok(g, 'the consumer group exists');
  return g;
}

const msg = (seq: number) => ({ runId: `run-${seq}`, seq });

test('acks keep the lag exact: XINFO GROUPS reports a number while steps finish out of order with a backlog', async (tc) => {
  const { q, key } = await queueOn(tc, 'lagging');
  for (let i = 0; i < 5; i++) await q.publish('lagging', msg(i));
  // Three steps run at once; the two later ones finish first, the first is still running.
  const [slow, ...quick] = await q.read(['lagging'], 'w1', 3, 100);
  for (const d of quick) await q.ack(d);
  assert.equal((await group(key)).lag, 2, 'two entries wait to be read');
  assert.equal((await q.depth(['lagging']))[0].lag, 2);
  await q.ack(slow);
  for (const d of await q.read(['lagging'], 'w1', 10, 100)) await q.ack(d);
  assert.equal((await group(key)).lag, 0);
  assert.equal((await q.depth(['lagging']))[0].lag, 0);
});

test('housekeeping trims acked entries only: pending and undelivered ones stay, and the lag stays exact', async (tc) => {
  const { q, key } = await queueOn(tc, 'trimmed');
  for (let i = 0; i < 6; i++) await q.publish('trimmed', msg(i));
  const [d0, d1, d2] = await q.read(['trimmed'], 'w1', 3, 100);
  await q.ack(d0);
  await q.ack(d2);
  const first = await q.housekeep(['trimmed'], { deadConsumerMs: 60_000 });
  assert.equal(first.trimmed, 1, 'only the entry before the oldest pending one');
  assert.deepEqual((await client.xRange(key, '-', '+'))?.map((e) => e?.message.seq), ['1', '2', '3', '4', '5']);

  await q.ack(d1);
  const second = await q.housekeep(['trimmed'], { deadConsumerMs: 60_000 });
  assert.equal(second.trimmed, 2);
  assert.deepEqual((await client.xRange(key, '-', '+'))?.map((e) => e?.message.seq), ['3', '4', '5'], 'the undelivered entries stay');
  assert.equal((await group(key)).lag, 3, 'the lag is still a number after trimming');
  const rest = await q.read(['trimmed'], 'w1', 10, 100);
  assert.deepEqual(rest.map((d) => d.message.seq), [3, 4, 5], 'every undelivered entry is still delivered');
});

test('housekeeping never trims an entry delivered while it looks: the pending one stays claimable', async (tc) => {
  const prefix = testPrefix();
  const own = await connectRedis({ url: redis.url });
  const other = createRedisQueue({ client: own, prefix });
  // Housekeeping reads the group's state in two commands; a worker reads a message between them.
  let delivered = null as Delivery[] | null;
  const deliverOnce = async <T>(result: T): Promise<T> => {
    delivered ??= await other.read(['racing'], 'w1', 1, 100);
    return result;
  };
  const spy = new Proxy(own, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if ((prop === 'xPending' || prop === 'xInfoGroups') && typeof value === 'function') {
        return (...args: unknown[]) => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).then(deliverOnce);
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as RedisClient;
  const q = createRedisQueue({ client: spy, prefix });
  tc.after(async () => {
    await q.close();
    await other.close();
    await own.close();
  });
  await q.prepare(['racing']);
  await q.publish('racing', msg(0));
  await q.housekeep(['racing'], { deadConsumerMs: 60_000 });
  const [d] = (delivered ?? []) as Delivery[];
  assert.ok(d, 'the message was delivered during housekeeping');
  const key = streamKey(prefix, 'racing');
  assert.equal((await client.xRange(key, '-', '+'))?.length, 1, 'the pending entry is still in the stream');
  // A reclaim takes it over (a trimmed entry would be dropped from the pending list instead).
  const taken = await other.claim([{ function: 'racing', id: d.id, consumer: 'w1', idleMs: 0 }], 'w2', 0);
  assert.deepEqual(taken.map((t) => t.message), [msg(0)]);
});

test('a dead consumer leaves the group once its messages are taken over; one still holding a message stays', async (tc) => {
  const { q, key } = await queueOn(tc, 'tidy');
  for (let i = 0; i < 2; i++) await q.publish('tidy', msg(i));
  const [lost] = await q.read(['tidy'], 'dead', 1, 100);
  const [held] = await q.read(['tidy'], 'stalled', 1, 100);
  await new Promise((resolve) => setTimeout(resolve, 120));
  // Both are idle; only the dead consumer's message is taken over (by a live worker, which runs and acks it).
  const idle = await q.idle(['tidy'], 100, 10);
  assert.deepEqual(idle.map((e) => [e.id, e.consumer]).sort(), [[lost.id, 'dead'], [held.id, 'stalled']].sort());
  const taken = await q.claim(idle.filter((e) => e.consumer === 'dead'), 'alive', 100);
  assert.deepEqual(taken.map((d) => d.id), [lost.id]);
  await q.ack(taken[0]);
  await new Promise((resolve) => setTimeout(resolve, 120));

  const done = await q.housekeep(['tidy'], { deadConsumerMs: 100 });
  assert.deepEqual(done.consumersRemoved.sort(), ['alive', 'dead']);
  const names = ((await client.xInfoConsumers(key, CONSUMER_GROUP)) as Array<Record<string, unknown>>).map((c) => c.name);
  assert.deepEqual(names, ['stalled'], 'a consumer with a pending message is never removed (its message would be lost)');
  const pending = await client.xPending(key, CONSUMER_GROUP);
  assert.equal(pending.pending, 1);
});

test('publishMany adds, in order, the very entries that publish adds one by one (a trace only where there is one)', async (tc) => {
  const { q, key } = await queueOn(tc, 'many');
  const trace = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const messages = [msg(1), { ...msg(2), trace }, msg(3)];
  for (const m of messages) await q.publish('many', m);
  await q.publishMany('many', messages);
  await q.publishMany('many', [msg(4)]);
  await q.publishMany('many', []);
  const entries = ((await client.xRange(key, '-', '+')) ?? []).map((e) => ({ ...e?.message }));
  assert.equal(entries.length, 7);
  assert.deepEqual(entries.slice(3, 6), entries.slice(0, 3));
  assert.deepEqual(entries[1], { run_id: 'run-2', seq: '2', trace });
  assert.deepEqual(entries[6], { run_id: 'run-4', seq: '4' });
  assert.deepEqual((await q.read(['many'], 'c', 10, 100)).map((d) => d.message), [...messages, ...messages, msg(4)]);
});

test('a burst published together is shared by the workers blocked on the stream, as when published one by one', async (tc) => {
  const prefix = testPrefix();
  const readers = await Promise.all(
    ['a', 'b'].map(async () => {
      const own = await connectRedis({ url: redis.url });
      const q = createRedisQueue({ client: own, prefix });
      tc.after(async () => {
        await q.close();
        await own.close();
      });
      return q;
    }),
  );
  await readers[0].prepare(['burst']);
  const reads = readers.map((q, i) => q.read(['burst'], `worker-${i}`, 100, 10_000));
  // Both are blocked now (this file's redis-server serves no one else).
  await waitFor(async () => Number(/blocked_clients:(\d+)/.exec(await client.info('clients'))?.[1]) >= 2, 'both readers to block', 5000);
  await readers[0].publishMany('burst', Array.from({ length: 10 }, (_, i) => msg(i)));
  const got = await Promise.all(reads);
  assert.ok(got.every((d) => d.length > 0), `each blocked worker got some: ${got.map((d) => d.length).join(' and ')}`);
});

test('the Lua scripts touch only keys they declare (Redis Cluster routes a script by its KEYS)', async (tc) => {
  const { q } = await queueOn(tc, 'scripted');
  const monitor = client.duplicate();
  await monitor.connect();
  const lines: string[] = [];
  await monitor.monitor((line) => lines.push(String(line)));
  tc.after(() => monitor.destroy());

  await q.publish('scripted', msg(1), 1);
  await q.publishMany('scripted', [msg(2), msg(3)]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await q.promoteDue(['scripted']), 1);
  for (const d of await q.read(['scripted'], 'gone', 10, 100)) await q.ack(d);
  await new Promise((resolve) => setTimeout(resolve, 120));
  await q.housekeep(['scripted'], { deadConsumerMs: 50 });
  await new Promise((resolve) => setTimeout(resolve, 100));

  // MONITOR shows an EVAL with its declared keys, then each command the script ran ("lua" source).
  const args = (line: string) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
  let declared: string[] = [];
  const checked: string[] = [];
  for (const line of lines) {
    const a = args(line);
    if (a[0]?.toUpperCase() === 'EVAL' || a[0]?.toUpperCase() === 'EVALSHA') {
      declared = a.slice(3, 3 + Number(a[2]));
    } else if (/\[\d+ lua\]/.test(line)) {
      const cmd = a[0].toUpperCase();
      if (cmd === 'TIME') continue;
      const key = cmd === 'XGROUP' ? a[2] : a[1];
      assert.ok(declared.includes(key), `${cmd} inside a script touched ${key}, not among its KEYS ${JSON.stringify(declared)}`);
      checked.push(cmd);
    }
  }
  for (const cmd of ['ZADD', 'ZRANGEBYSCORE', 'XADD', 'ZREM', 'XGROUP']) assert.ok(checked.includes(cmd), `${cmd} ran in a script: ${checked}`);
});

const napper = defineAgent({ name: 'napper', input: v.object({}), start: 'a', steps: { a: () => done('ok') } });

test('after FLUSHALL the housekeeper creates the consumer groups again (XPENDING answers NOGROUP until then)', async (tc) => {
  const t = await startTestPlatform({
    functions: registryOf(napper),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { REDIS_URL: redis.url, BATON_LEASE_MS: '500' },
  });
  // The housekeeping role: no steps of its own, like `baton worker --housekeeping`.
  const housekeeper = createWorker(t.p, { functions: [] });
  tc.after(async () => {
    await housekeeper.stop(1000); // before the platform it uses closes
    await t.close();
  });
  await housekeeper.start();
  const key = streamKey(t.prefix, 'napper');
  await group(key);

  assert.equal(await client.flushAll(), 'OK');
  await assert.rejects(client.xPending(key, CONSUMER_GROUP), /NOGROUP/);
  await waitFor(() => client.xPending(key, CONSUMER_GROUP).catch(() => null), 'the group to be created again', 15_000);
  const g = await group(key);
  assert.equal(g.lag, 0);
  assert.equal(g.pending, 0);
});
