import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { RunNotice } from './bus.ts';
import { throttleChanged } from './throttle.ts';

const WINDOW_MS = 40;

function recorder() {
  const sent: Array<[string, RunNotice]> = [];
  return { sent, send: (runId: string, notice: RunNotice) => void sent.push([runId, notice]) };
}

test("a burst of a run's changes: the first is sent at once, the rest as one when the window ends", async () => {
  const r = recorder();
  const t = throttleChanged(r.send, WINDOW_MS);
  for (let i = 0; i < 6; i++) t.publish('a', { type: 'changed' });
  assert.deepEqual(r.sent, [['a', { type: 'changed' }]]);
  await sleep(WINDOW_MS * 3);
  assert.deepEqual(r.sent, [['a', { type: 'changed' }], ['a', { type: 'changed' }]], 'the last change is announced');
  // A quiet window later, a new change goes at once again.
  t.publish('a', { type: 'changed' });
  assert.equal(r.sent.length, 3);
  t.flush();
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
