/**
 * Shared checks for chaos tests that run the demo agent (pr-review): every run
 * succeeded with contiguous steps, its final checkpoint holds the whole conversation,
 * and the review tool stored each run's idempotency key exactly once.
 */
import assert from 'node:assert/strict';
import { inArray } from 'drizzle-orm';
import { runs, steps, toolCalls } from '../../schema/tables.ts';
import { type TestPlatform, finalState } from './platform.ts';

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) map.set(key(item), [...(map.get(key(item)) ?? []), item]);
  return map;
}

export interface ReviewRunsReport {
  runs: number;
  comments: number;
  /** Posts that reached the review tool (a re-executed post step delivers again). */
  deliveries: number;
  /** Keys stored more than once: must be 0. */
  duplicates: number;
  /** Steps that ran more than once (crash or lost lease), from the tool-call audit and LLM calls. */
  reexecutedToolCalls: number;
}

export async function verifyReviewRuns(t: TestPlatform, ids: readonly string[]): Promise<ReviewRunsReport> {
  const db = t.p.db;
  const runRows = await db.select().from(runs).where(inArray(runs.id, [...ids]));
  assert.equal(runRows.length, ids.length, 'every run exists once');
  const notDone = runRows.filter((r) => r.status !== 'succeeded');
  assert.deepEqual(notDone.map((r) => [r.id, r.status, r.error]), [], 'every run succeeded');

  const stepRows = await db.select().from(steps).where(inArray(steps.runId, [...ids]));
  const byRun = groupBy(stepRows, (s) => s.runId);
  for (const id of ids) {
    const list = (byRun.get(id) ?? []).sort((a, b) => a.seq - b.seq);
    assert.deepEqual(
      list.map((s) => [s.seq, s.name, s.status]),
      [[0, 'fetch_diff', 'succeeded'], [1, 'review', 'succeeded'], [2, 'post', 'succeeded']],
      `run ${id}: steps contiguous, each seq once`,
    );
  }

  for (const id of ids) {
    const final = (await finalState(t.p, id)) as { messages?: Array<{ role: string }> };
    assert.deepEqual(final.messages?.map((m) => m.role), ['user', 'assistant', 'tool'], `run ${id}: the final state holds every step's contribution, once`);
  }

  const store = t.tools?.reviews;
  assert.ok(store, 'the review tool runs in the test process');
  const comments = await store.list({});
  const keys = new Map<string, number>();
  for (const c of comments) keys.set(c.idempotencyKey ?? '', (keys.get(c.idempotencyKey ?? '') ?? 0) + 1);
  const duplicates = [...keys.values()].filter((n) => n > 1).length;
  assert.equal(duplicates, 0, 'no idempotency key was stored twice');
  const commentOf = new Map(comments.map((c) => [c.idempotencyKey, c]));
  for (const r of runRows) {
    const c = commentOf.get(`${r.id}:2`);
    assert.ok(c, `run ${r.id}: its post is stored`);
    assert.equal((r.output as { commentId: number }).commentId, c.id, `run ${r.id}: the run reports the stored comment`);
  }
  assert.equal(comments.length, ids.length, 'exactly one comment per run');

  const calls = await db.select().from(toolCalls).where(inArray(toolCalls.runId, [...ids]));
  const perStep = groupBy(calls, (c) => `${c.runId}:${c.seq}`);
  const reexecutedToolCalls = [...perStep.values()].filter((l) => l.length > 1).length;
  return {
    runs: ids.length,
    comments: comments.length,
    deliveries: comments.reduce((n, c) => n + c.deliveries, 0),
    duplicates,
    reexecutedToolCalls,
  };
}

/** POSTs a run over HTTP; retries 503s with the same Idempotency-Key. Returns the statuses seen. */
export async function submitRun(
  apiUrl: string,
  input: unknown,
  opts: { key?: string; retryUntilMs?: number } = {},
): Promise<{ id: string; statuses: number[] }> {
  const statuses: number[] = [];
  const deadline = Date.now() + (opts.retryUntilMs ?? 0);
  for (;;) {
    const res = await fetch(`${apiUrl}/v1/functions/pr-review/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.key ? { 'idempotency-key': opts.key } : {}) },
      body: JSON.stringify(input),
    });
    statuses.push(res.status);
    const body = (await res.json()) as { id?: string };
    if (res.status === 202 && body.id) return { id: body.id, statuses };
    if (res.status !== 503 || Date.now() > deadline) throw new Error(`POST answered ${res.status}: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Polls until none of the runs is live; fails after `timeoutMs`. */
export async function waitForRuns(t: TestPlatform, ids: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await t.p.db.select({ id: runs.id, status: runs.status }).from(runs).where(inArray(runs.id, [...ids]));
    const live = rows.filter((r) => r.status === 'queued' || r.status === 'running' || r.status === 'waiting');
    if (rows.length === ids.length && live.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${live.length} of ${ids.length} runs still live after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
