import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffMs } from './backoff.ts';

test('the ceiling doubles per attempt from the base and stops at the max', () => {
  const top = (attempt: number) => backoffMs(attempt, 100, 1000, () => 1);
  assert.deepEqual([1, 2, 3, 4, 5, 10].map(top), [100, 200, 400, 800, 1000, 1000]);
});

test('full jitter: anywhere from 0 to the ceiling', () => {
  assert.equal(backoffMs(3, 100, 1000, () => 0), 0);
  assert.equal(backoffMs(3, 100, 1000, () => 0.5), 200);
  for (let i = 0; i < 200; i++) {
    const d = backoffMs(4, 100, 1000);
    assert.ok(d >= 0 && d <= 800, String(d));
  }
});

test('attempt 0 or less is treated as the first', () => {
  assert.equal(backoffMs(0, 100, 1000, () => 1), 100);
});
