import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRunId } from './run-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => parseInt(id.replaceAll('-', '').slice(0, 12), 16);

test('a run id is a UUIDv7 carrying the time it was made', () => {
  const before = Date.now();
  const id = newRunId();
  assert.match(id, V7);
  assert.ok(msOf(id) >= before && msOf(id) <= Date.now() + 1, `${msOf(id)} is about ${before}`);
});

test('ids sort in the order they were made, within one millisecond and past 4,096 of them', () => {
  const now = Date.now() + 60_000; // a millisecond no earlier call used
  const ids = Array.from({ length: 10_000 }, () => newRunId(now));
  assert.ok(ids.every((id) => V7.test(id)));
  assert.deepEqual(ids.toSorted(), ids);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(msOf(ids[0]), now);
  assert.equal(msOf(ids[9_999]), now + 2, 'the 4,097th and 8,193rd borrow the next milliseconds');
  // A clock that steps back does not break the order either.
  const later = newRunId(now - 5_000);
  assert.ok(later > ids[9_999]);
});
