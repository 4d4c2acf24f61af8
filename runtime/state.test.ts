import assert from 'node:assert/strict';
import { test } from 'node:test';
import { append, applyPatch, replay } from './state.ts';

test('a patch replaces keys and appends to lists', () => {
  const s0 = { a: 1, list: [1] };
  const s1 = applyPatch(s0, { a: 2, list: append(2, 3), b: 'x' });
  assert.deepEqual(s1, { a: 2, list: [1, 2, 3], b: 'x' });
  assert.deepEqual(s0, { a: 1, list: [1] }, 'the input state is not modified');
});

test('append starts a list where there is none, or where the value is not a list', () => {
  assert.deepEqual(applyPatch({}, { m: append('x') }), { m: ['x'] });
  assert.deepEqual(applyPatch({ m: 'scalar' }, { m: append('x') }), { m: ['x'] });
});

test('an object that only looks like an append (extra keys) is a plain value', () => {
  const value = { $append: [1], other: true };
  assert.deepEqual(applyPatch({ k: [0] }, { k: value }), { k: value });
});

test('replay = snapshot + patches in order, and survives JSON (how patches are stored)', () => {
  const patches = [{ n: 1, log: append('a') }, null, { n: 2, log: append('b') }];
  const stored = JSON.parse(JSON.stringify(patches));
  assert.deepEqual(replay({ log: ['start'] }, stored), { n: 2, log: ['start', 'a', 'b'] });
  assert.deepEqual(replay(null, []), {});
});
