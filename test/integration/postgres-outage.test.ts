/**
 * PostgreSQL goes away and comes back. The test's own database is reached through a
 * TCP proxy that the test cuts (open connections reset, new ones refused: what clients
 * see during a restart), so the shared PostgreSQL server is never restarted.
 * While it is down the API answers 503 `database_unavailable` (never 500, never a
 * hang); a step in flight finishes its call, its commit backs off and lands once the
 * database is back; the run completes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

test('API 503 while the database is down, and the in-flight step commits after it is back', async (tc) => {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
  const t = await startTestPlatform({ connectVia: (url) => proxy.via(url), llm: { delayMs: 1200 } });
  tc.after(async () => {
    await proxy.up();
    await t.close();
    await proxy.close();
  });
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 3 });
  await waitFor(() => t.llm?.inflight, 'the review step to be in its LLM call');

  await proxy.down();
  const timed = async (path: string, init?: RequestInit) => {
    const started = Date.now();
    const res = await t.api.request(path, init);
    return { status: res.status, body: (await res.json()) as { error?: { code: string } }, ms: Date.now() - started };
  };
  const post = await timed('/v1/functions/pr-review/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repo: 'acme/shop', pr: 4 }),
  });
  const get = await timed(`/v1/runs/${id}`);
  const ready = await t.api.request('/readyz');
  for (const r of [post, get]) {
    assert.equal(r.status, 503);
    assert.equal(r.body.error?.code, 'database_unavailable');
    assert.ok(r.ms < 10_000, `answered in ${r.ms} ms`);
  }
  assert.equal(ready.status, 503);

  // The LLM answers while the database is down; the commit retries until it is back.
  await waitFor(() => t.llm?.inflight === 0, 'the LLM call to finish');
  await new Promise((resolve) => setTimeout(resolve, 500)); // the commit is now backing off
  await proxy.up();

  const { run, steps } = await waitForRun(t.p, id, undefined, 30_000);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.status, s.attempt]), [
    [0, 'fetch_diff', 'succeeded', 1],
    [1, 'review', 'succeeded', 1],
    [2, 'post', 'succeeded', 1],
  ]);
  assert.equal(t.llm?.calls.length, 1, 'the step was not re-run: its result was committed once the database was back');
  const after = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 5 });
  assert.equal((await waitForRun(t.p, after)).run.status, 'succeeded');
  tc.diagnostic(`database down: POST 503 in ${post.ms} ms, GET 503 in ${get.ms} ms; in-flight step committed after recovery`);
});
