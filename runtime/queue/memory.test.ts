import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryQueue } from './memory.ts';

/**
 * Sleeps until more than `ms` have passed since `since` by the clock the queue reads
 * (Date.now()). One timer is not enough: it may end a millisecond early by that clock.
 */
async function until(since: number, ms: number) {
  while (Date.now() - since <= ms) await new Promise((resolve) => setTimeout(resolve, Math.max(1, ms - (Date.now() - since) + 1)));
}

test('embedded queue: a delayed message waits on the timer list until due, then the mover promotes it', async () => {
  const q = createMemoryQueue();
  await q.publish('fn', { runId: 'r', seq: 1 }, 150);
  const published = Date.now();
  assert.equal(await q.promoteDue(['fn']), 0);
  assert.deepEqual(await q.read(['fn'], 'c', 10, 10), []);
  await until(published, 150);
  assert.equal(await q.promoteDue(['fn']), 1);
  const [d] = await q.read(['fn'], 'c', 10, 10);
  assert.deepEqual(d.message, { runId: 'r', seq: 1 });
  await q.close();
});

test('embedded queue: an unacked message is taken over once idle longer than the lease', async () => {
  const q = createMemoryQueue();
  await q.publish('fn', { runId: 'r', seq: 0 });
  const [d] = await q.read(['fn'], 'dead', 10, 10);
  const delivered = Date.now();
  assert.deepEqual(await q.idle(['fn'], 1000, 10), [], 'not idle long enough');
  await until(delivered, 50);
  const idle = await q.idle(['fn'], 50, 10);
  assert.deepEqual(idle.map((e) => [e.id, e.consumer]), [[d.id, 'dead']]);
  const [again] = await q.claim(idle, 'alive', 50);
  assert.equal(again.id, d.id);
  assert.deepEqual(await q.claim(idle, 'late', 50), [], 'a second taker finds it no longer idle');
  await q.ack(again);
  assert.deepEqual(await q.depth(['fn']), [{ function: 'fn', lag: 0, pending: 0, oldestMs: 0 }]);
  await q.close();
});
