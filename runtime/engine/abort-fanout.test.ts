import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { followAbort } from './abort-fanout.ts';

test('followers of one signal share one listener; an abort calls each still following, once', () => {
  const c = new AbortController();
  const calls: string[] = [];
  const stopA = followAbort(c.signal, () => calls.push('a'));
  followAbort(c.signal, () => calls.push('b'));
  const stopC = followAbort(c.signal, () => calls.push('c'));
  assert.equal(getEventListeners(c.signal, 'abort').length, 1);
  stopA();
  stopC();
  stopC();
  c.abort();
  c.abort();
  assert.deepEqual(calls, ['b']);
  assert.equal(getEventListeners(c.signal, 'abort').length, 0);
});

test('following a signal already aborted calls back at once', () => {
  const c = new AbortController();
  c.abort();
  let called = 0;
  followAbort(c.signal, () => called++)();
  assert.equal(called, 1);
});

test('a follower that stops following while others are called back is not called', () => {
  const c = new AbortController();
  const calls: string[] = [];
  let stopB = () => {};
  followAbort(c.signal, () => {
    calls.push('a');
    stopB();
  });
  stopB = followAbort(c.signal, () => calls.push('b'));
  c.abort();
  assert.deepEqual(calls, ['a']);
});
