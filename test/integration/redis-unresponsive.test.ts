/**
 * A Redis that keeps its connections open but stops answering (paused, overloaded, a
 * network that drops packets): a command sent without node-redis's own timeout must not
 * hang the step that sent it. The hand-on's MULTI (XADD next + XACK this) fails within the
 * command timeout; the commit before it is durable, and the message, left pending, is
 * reclaimed after a lease.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectRedis, createRedisQueue } from '../../runtime/queue/redis.ts';
import { teardown } from '../helpers/processes.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

test('a hand-on to a Redis that stopped answering fails within the command timeout', { timeout: 15_000 }, async (tc) => {
  const defer = teardown(tc);
  const redis = await startRedisServer();
  defer(() => redis.stop());
  const client = await connectRedis({ url: redis.url, commandTimeoutMs: 300 });
  defer(() => client.destroy());
  const queue = createRedisQueue({ client, prefix: 'hang:', commandTimeoutMs: 300 });
  defer(() => queue.close());
  await queue.prepare(['fn']);
  await queue.publish('fn', { runId: '00000000-0000-7000-8000-000000000001', seq: 0 });
  const [delivery] = await queue.read(['fn'], 'c1', 1, 100);
  assert.ok(delivery);

  redis.pause();
  defer(async () => redis.resume());
  const started = performance.now();
  await assert.rejects(queue.handOn(delivery, { runId: delivery.message.runId, seq: 1 }), /did not answer/);
  const waited = performance.now() - started;
  assert.ok(waited < 3000, `the hand-on gave up after ${Math.round(waited)} ms`);
});
