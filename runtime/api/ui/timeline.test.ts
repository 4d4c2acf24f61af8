import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Run, Step, StepAttempt } from '../../../schema/tables.ts';
import { buildTimeline } from './timeline.ts';

const T0 = Date.parse('2026-11-29T03:00:00Z');
const at = (ms: number) => new Date(T0 + ms);

const run = (over: Partial<Run>): Run => ({ id: 'r', function: 'f', status: 'succeeded', createdAt: at(0), finishedAt: at(1000), updatedAt: at(1000), nextSeq: 3, nextStep: null, waitSignal: null, wakeAt: null, ...over }) as Run;
const step = (seq: number, name: string, kind: Step['kind'], from: number, to: number, over: Partial<Step> = {}): Step =>
  ({ runId: 'r', seq, name, kind, status: 'succeeded', attempt: 1, startedAt: at(from), finishedAt: at(to), durationMs: to - from, error: null, ...over }) as Step;
const attempt = (seq: number, n: number, status: StepAttempt['status'], from: number, to: number): StepAttempt =>
  ({ runId: 'r', seq, attempt: n, status, startedAt: at(from), finishedAt: at(to), durationMs: to - from, error: status === 'failed' ? { code: 'step_error', message: 'boom' } : null }) as StepAttempt;

test('queued before each step, every attempt, the backoff between them, and a wait for a signal', () => {
  const tl = buildTimeline({
    run: run({}),
    steps: [step(0, 'a', 'llm', 10, 100), step(1, 'b', 'wait', 300, 310, { attempt: 2 }), step(2, 'c', 'compute', 900, 1000)],
    attempts: [attempt(0, 1, 'succeeded', 10, 100), attempt(1, 1, 'failed', 120, 200), attempt(1, 2, 'succeeded', 300, 310), attempt(2, 1, 'succeeded', 900, 1000)],
  });
  assert.deepEqual(
    tl.rows.map((r) => r.segments.map((s) => [s.kind, s.end - s.start])),
    [
      [['queued', 10], ['succeeded', 90]],
      [['queued', 20], ['failed', 80], ['backoff', 100], ['succeeded', 10]],
      [['waiting', 590], ['succeeded', 100]],
    ],
  );
  assert.equal(tl.rows[1]?.attempts, 2);
  assert.match(tl.rows[1]?.segments[1]?.note ?? '', /step_error: boom/);
  assert.deepEqual(tl.totals, { queuedMs: 30, waitingMs: 590, runningMs: 280, backoffMs: 100, wallMs: 1000 });
});

test('a live run gets a row for the step it waits to run', () => {
  const now = T0 + 5000;
  const tl = buildTimeline(
    { run: run({ status: 'waiting', finishedAt: null, nextSeq: 1, nextStep: 'post', waitSignal: 'approval' }), steps: [step(0, 'ask', 'wait', 0, 50)], attempts: [attempt(0, 1, 'succeeded', 0, 50)] },
    now,
  );
  const pending = tl.rows.at(-1);
  assert.equal(pending?.pending, true);
  assert.equal(pending?.status, 'waiting for approval');
  assert.deepEqual(pending?.segments.map((s) => [s.kind, s.start - T0, s.end - T0]), [['waiting', 50, 5000]]);
});

test("a replay's kept steps are drawn before it began, dimmed, and left out of its totals", () => {
  const created = 10_000;
  const tl = buildTimeline({
    run: run({ createdAt: at(created), finishedAt: at(created + 200) }),
    steps: [step(0, 'a', 'llm', 0, 3000), step(1, 'b', 'compute', created + 50, created + 200)],
    attempts: [attempt(0, 1, 'succeeded', 0, 3000), attempt(1, 1, 'succeeded', created + 50, created + 200)],
  });
  assert.equal(tl.start, T0);
  assert.deepEqual(tl.rows.map((r) => r.kept), [true, false]);
  // The first new step was due when the replay was created, not when the kept step ended.
  assert.deepEqual(tl.rows[1]?.segments.map((s) => [s.kind, s.end - s.start]), [['queued', 50], ['succeeded', 150]]);
  assert.equal(tl.totals.runningMs, 150);
  assert.equal(tl.totals.wallMs, 200);
});

test('a fan-out: branches side by side from the fan-out step, the join due when the slowest branch ended', () => {
  const b = (seq: number, n: number, from: number, to: number, status: Step['status'] = 'succeeded') =>
    step(seq, `fetch`, 'tool', from, to, { branch: n, fanoutSeq: 0, status });
  const tl = buildTimeline({
    run: run({ finishedAt: at(900) }),
    steps: [step(0, 'plan', 'llm', 0, 100), b(1, 1, 120, 300), b(2, 2, 110, 700), step(3, 'join', 'llm', 750, 900)],
    attempts: [attempt(0, 1, 'succeeded', 0, 100), attempt(1, 1, 'succeeded', 120, 300), attempt(2, 1, 'succeeded', 110, 700), attempt(3, 1, 'succeeded', 750, 900)],
  });
  assert.deepEqual(tl.rows.map((r) => r.branch), [null, 1, 2, null]);
  assert.deepEqual(tl.rows.map((r) => r.segments.map((s) => [s.kind, s.start - T0, s.end - T0])), [
    [['succeeded', 0, 100]],
    [['queued', 100, 120], ['succeeded', 120, 300]],
    [['queued', 100, 110], ['succeeded', 110, 700]],
    [['queued', 700, 750], ['succeeded', 750, 900]],
  ]);
});

test('a live fan-out: a branch not started yet is queued, the join row says what it waits for', () => {
  const now = T0 + 1000;
  const tl = buildTimeline(
    {
      run: run({ status: 'running', finishedAt: null, nextSeq: 3, nextStep: 'join' }),
      steps: [step(0, 'plan', 'llm', 0, 100), step(1, 'fetch', 'tool', 150, 400, { branch: 1, fanoutSeq: 0 }), step(2, 'fetch', null, 100, 100, { branch: 2, fanoutSeq: 0, status: 'queued', finishedAt: null })],
      attempts: [attempt(0, 1, 'succeeded', 0, 100), attempt(1, 1, 'succeeded', 150, 400)],
    },
    now,
  );
  assert.deepEqual(tl.rows[2]?.segments.map((s) => [s.kind, s.start - T0, s.end - T0]), [['queued', 100, 1000]]);
  assert.equal(tl.rows[3]?.status, 'joins 1 more branch');
});
