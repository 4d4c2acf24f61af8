import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { RunNotice } from './bus.ts';
import { throttleChanged } from './throttle.ts';

const WINDOW_MS = 40;

function recorder() {
  const sent: Array<[string, RunNotice]> = [];
  /** When the last notice went (performance.now()). */
  let lastAt = 0;
  return {
    sent,
    lastAt: () => lastAt,
    send: (runId: string, notice: RunNotice) => {
      lastAt = performance.now();
      sent.push([runId, notice]);
    },
  };
}

test("a burst of a run's changes: the first is sent at once, the rest as one when the window ends", async () => {
  const r = recorder();
  const t = throttleChanged(r.send, WINDOW_MS);
  for (let i = 0; i < 6; i++) t.publish('a', { type: 'changed' });
  assert.deepEqual(r.sent, [['a', { type: 'changed' }]]);
  await sleep(WINDOW_MS * 3);
  assert.deepEqual(r.sent, [['a', { type: 'changed' }], ['a', { type: 'changed' }]], 'the last change is announced');
  // A quiet window after the last notice (whenever the timer that sent it ran), a new change goes
  // at once again. Waited for by the clock, not one timer: a timer may end a millisecond early.
  while (performance.now() - r.lastAt() < WINDOW_MS) await sleep(1);
  t.publish('a', { type: 'changed' });
  assert.equal(r.sent.length, 3);
  t.flush();
});

/** Holds the event loop for `ms` (no timer runs meanwhile), as a busy process's long turn does. */
function busyFor(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a change after its window has ended goes at once, even when the window\'s timer has not run yet', () => {
  const r = recorder();
  const t = throttleChanged(r.send, WINDOW_MS);
  t.publish('a', { type: 'changed' });
  busyFor(WINDOW_MS + 5);
  t.publish('a', { type: 'changed' });
  assert.equal(r.sent.length, 2, 'the window had ended: nothing to hold the change back for');
  t.publish('a', { type: 'changed' });
  assert.equal(r.sent.length, 2, 'the change opened a new window');
  t.flush();
  assert.equal(r.sent.length, 3);
});

test('runs are throttled apart, token deltas are never held, a lone change is sent once', async () => {
  const r = recorder();
  const t = throttleChanged(r.send, WINDOW_MS);
  t.publish('a', { type: 'changed' });
  t.publish('b', { type: 'changed' });
  t.publish('a', { type: 'delta', seq: 1, text: 'x' });
  t.publish('a', { type: 'delta', seq: 1, text: 'y' });
  assert.deepEqual(r.sent.map(([id, n]) => `${id}:${n.type}${n.type === 'delta' ? n.text : ''}`), ['a:changed', 'b:changed', 'a:deltax', 'a:deltay']);
  await sleep(WINDOW_MS * 3);
  assert.equal(r.sent.length, 4, 'nothing held, nothing sent again');
  t.flush();
});

test('flush sends what is held at once', () => {
  const r = recorder();
  const t = throttleChanged(r.send, 60_000);
  t.publish('a', { type: 'changed' });
  t.publish('a', { type: 'changed' });
  t.publish('b', { type: 'changed' });
  t.flush();
  assert.deepEqual(r.sent.map(([id]) => id), ['a', 'b', 'a']);
});
