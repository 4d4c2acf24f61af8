import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryQueue } from './memory.ts';

test('embedded queue: a delayed message waits on the timer list until due, then the mover promotes it', async () => {
  const q = createMemoryQueue();
  await q.publish('fn', { runId: 'r', seq: 1 }, 150);
  assert.equal(await q.promoteDue(), 0);
  assert.deepEqual(await q.read(['fn'], 'c', 10, 10), []);
  await new Promise((resolve) => setTimeout(resolve, 160));
  assert.equal(await q.promoteDue(), 1);
  const [d] = await q.read(['fn'], 'c', 10, 10);
  assert.deepEqual(d.message, { runId: 'r', seq: 1 });
  await q.close();
});

test('embedded queue: an unacked message is reclaimed once idle longer than the lease', async () => {
  const q = createMemoryQueue();
  await q.publish('fn', { runId: 'r', seq: 0 });
  const [d] = await q.read(['fn'], 'dead', 10, 10);
  assert.deepEqual(await q.reclaim(['fn'], 'alive', 1000, 10), [], 'not idle long enough');
  await new Promise((resolve) => setTimeout(resolve, 60));
  const [again] = await q.reclaim(['fn'], 'alive', 50, 10);
  assert.equal(again.id, d.id);
  await q.ack(again);
  assert.deepEqual(await q.depth(['fn']), [{ function: 'fn', lag: 0, pending: 0, oldestMs: 0 }]);
  await q.close();
});
