/**
 * `diagnose`: what becomes of a message whose claim matched nothing. These rows are
 * the repair paths of the step protocol, so each branch is pinned here.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RunProbe, diagnose } from './claim.ts';

const NOW = 1_000_000;
const run = (over: Partial<RunProbe>): RunProbe => ({
  status: 'running',
  function: 'fn',
  next_seq: 3,
  leased: false,
  lease_expires_ms: null,
  wake_ms: null,
  now_ms: NOW,
  inbox: 0,
  branches: 0,
  ...over,
});

test('an unknown run or a finished one: drop', () => {
  assert.equal(diagnose(null, 0).action, 'drop');
  for (const status of ['succeeded', 'failed', 'cancelled']) assert.equal(diagnose(run({ status }), 3).action, 'drop');
});

test('a message ahead of the run is dropped', () => {
  assert.deepEqual(diagnose(run({ next_seq: 2 }), 3), { action: 'drop', reason: 'message ahead of the run' });
});

test('committed but not handed on (idle run past this seq): republish its current step at once', () => {
  assert.deepEqual(diagnose(run({ next_seq: 4 }), 3), {
    action: 'republish',
    reason: 'repair: committed but not handed on',
    function: 'fn',
    seq: 4,
    delayMs: 0,
  });
});

test('the repair keeps a pending backoff or wait timeout', () => {
  const v = diagnose(run({ next_seq: 4, wake_ms: NOW + 1500 }), 3);
  assert.equal(v.action, 'republish');
  assert.equal(v.action === 'republish' && v.delayMs, 1500);
  const waiting = diagnose(run({ status: 'waiting', next_seq: 4, wake_ms: NOW + 700 }), 3);
  assert.equal(waiting.action === 'republish' && waiting.delayMs, 700);
});

test('past this seq with the next step in flight, or waiting for a signal: drop the duplicate', () => {
  assert.equal(diagnose(run({ next_seq: 4, leased: true, lease_expires_ms: NOW + 10 }), 3).action, 'drop');
  assert.equal(diagnose(run({ status: 'waiting', next_seq: 4 }), 3).action, 'drop');
});

test('past this seq with a lease nobody renewed for a beat: look again once it ends, not drop (a chain in process left only this message)', () => {
  const stale = diagnose(run({ next_seq: 4, leased: true, lease_expires_ms: NOW + 100 }), 3, 'fn', { unrenewedMs: 333 });
  assert.deepEqual(stale, { action: 'recheck', reason: 'the step in flight was not renewed lately', function: 'fn', seq: 3, delayMs: 150 });
  // A live holder renews every beat, so its lease has more than a beat left: a plain duplicate.
  assert.equal(diagnose(run({ next_seq: 4, leased: true, lease_expires_ms: NOW + 900 }), 3, 'fn', { unrenewedMs: 333 }).action, 'drop');
  // Once that lease has ended and the run sits idle past this seq, the next look repairs it.
  assert.equal(diagnose(run({ next_seq: 4 }), 3, 'fn', { unrenewedMs: 333 }).action, 'republish');
});

test('this seq is in flight elsewhere: look again just after its lease ends', () => {
  const v = diagnose(run({ leased: true, lease_expires_ms: NOW + 800 }), 3);
  assert.equal(v.action, 'recheck');
  const delayMs = v.action === 'recheck' ? v.delayMs : 0;
  assert.ok(delayMs > 800 && delayMs < 1600, `after the lease ends, not a lease later: ${delayMs} ms`);
});

test('a backoff still running: look again when it ends', () => {
  const v = diagnose(run({ wake_ms: NOW + 2000 }), 3);
  assert.equal(v.action === 'recheck' && v.delayMs, 2000);
});

test('waiting for a signal with no timeout: drop (the signal publishes the wake-up)', () => {
  assert.equal(diagnose(run({ status: 'waiting' }), 3).action, 'drop');
});

test('claimable by now (lost a race): look again shortly', () => {
  const v = diagnose(run({}), 3);
  assert.equal(v.action, 'recheck');
  const delayMs = v.action === 'recheck' ? v.delayMs : -1;
  assert.ok(delayMs > 0 && delayMs <= 1000, `soon, but not in a busy loop: ${delayMs} ms`);
});

test('a message for another function is dropped: it neither runs nor repairs that run', () => {
  assert.deepEqual(diagnose(run({ function: 'other' }), 3, 'fn'), { action: 'drop', reason: 'run of function "other", not "fn"' });
  assert.equal(diagnose(run({ function: 'other', next_seq: 4 }), 3, 'fn').action, 'drop');
  assert.equal(diagnose(run({ next_seq: 4 }), 3, 'fn').action, 'republish');
});
