/**
 * Graceful shutdown of a real `baton worker` process: on SIGTERM it stops taking
 * messages, lets in-flight steps finish within BATON_GRACE_MS, releases the leases
 * of those it cannot finish (re-publishing them for another worker), and exits 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getRun } from '../../runtime/store/runs.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startWorkerProcess, stopAll } from '../helpers/processes.ts';

test('SIGTERM: an in-flight step finishes within the grace period, then the worker exits 0', async (tc) => {
  const t = await startTestPlatform({ worker: false, llm: { delayMs: 1500 } });
  tc.after(() => t.close());
  const w = await startWorkerProcess({ ...t.env, BATON_GRACE_MS: '20000' }, 'graceful');
  tc.after(() => stopAll([w]));
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 1 });
  await waitFor(() => t.llm?.inflight, 'the review step to be in its LLM call');

  const sent = Date.now();
  w.signal('SIGTERM');
  assert.deepEqual(await w.exited, { code: 0, signal: null });
  const tookMs = Date.now() - sent;
  // It left as soon as the step was done, not at the end of the 20 s grace period.
  assert.ok(tookMs < 15_000, `exited ${tookMs} ms after SIGTERM`);

  const { run, steps } = await waitForRun(t.p, id, ['running']);
  assert.deepEqual(steps.map((s) => [s.name, s.status]), [['fetch_diff', 'succeeded'], ['review', 'succeeded']]);
  assert.equal(run.nextSeq, 2);
  assert.equal(run.leaseOwner, null);
  assert.equal(t.llm?.aborted.size, 0, 'the call was not cut short');
  tc.diagnostic(`in-flight step finished, worker exited 0 in ${tookMs} ms`);
});

test('SIGTERM: a step that outlives the grace period is released for another worker, exit 0', async (tc) => {
  const t = await startTestPlatform({ worker: false, llm: { delayMs: (call) => (call === 1 ? 60_000 : 0) } });
  tc.after(() => t.close());
  const w = await startWorkerProcess({ ...t.env, BATON_GRACE_MS: '300', BATON_LEASE_MS: '30000' }, 'impatient');
  tc.after(() => stopAll([w]));
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 2 });
  await waitFor(() => t.llm?.inflight, 'the review step to be in its LLM call');
  const held = await getRun(t.p.db, id);
  assert.match(held?.leaseOwner ?? '', /^impatient-/);

  w.signal('SIGTERM');
  assert.deepEqual(await w.exited, { code: 0, signal: null });
  assert.ok(t.llm?.aborted.has(1), 'the in-flight call was aborted');
  const released = await getRun(t.p.db, id);
  assert.equal(released?.leaseOwner, null, 'the lease was released (not left to expire after 30 s)');

  // The step was handed back: another worker runs it at once, long before the lease would have expired.
  const other = createWorker(t.p);
  await other.start();
  const { run, steps } = await waitForRun(t.p, id, undefined, 15_000).finally(() => other.stop(1000));
  assert.equal(run.status, 'succeeded');
  assert.equal(steps[1].worker, other.consumer);
  tc.diagnostic('unfinished step released and re-published; worker exited 0');
});
