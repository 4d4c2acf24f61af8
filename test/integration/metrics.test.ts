/**
 * Prometheus metrics: off the public API port (404 there), on BATON_METRICS_PORT in
 * every process that has them; names that follow Prometheus conventions; queue lag per
 * function, reclaims and sweeper repairs counted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { newRunId } from '../../runtime/api/run-id.ts';
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { createRun } from '../../runtime/store/runs.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';
import { startCli } from '../helpers/cli.ts';
import { freePort } from '../helpers/ports.ts';
import { type BatonProcess, spawnBaton, stopAll } from '../helpers/processes.ts';

const agent = defineAgent({
  name: 'tally',
  input: v.object({}),
  start: 'a',
  steps: { a: () => next('b'), b: () => done({ ok: true }) },
});

/** One sample's value from the text exposition format, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, val]) => have[k] === val)) return Number(m[3]);
  }
  return undefined;
}

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: 'offline',
    worker: false,
    // The lease runs out well before the sweeper's threshold: the orphan is reclaimed, not swept.
    env: { BATON_LEASE_MS: '400', BATON_SWEEP_AFTER_MS: '1500' },
  });
});
after(() => t.close());

test('the public API port answers 404 for /metrics', async () => {
  const res = await t.api.request('/metrics');
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'route_not_found');
});

test('metric names follow Prometheus conventions', async () => {
  const text = await t.p.metrics.registry.metrics();
  assert.doesNotMatch(text, /baton_process_process_/, 'no doubled prefix');
  // The process and Node.js metrics keep their standard names, so stock dashboards work.
  assert.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'process_cpu_user_seconds_total');
  assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => ({ name: m[1], type: m[2] }));
  const ours = types.filter((m) => m.name.startsWith('baton_'));
  assert.ok(ours.length >= 10, ours.map((m) => m.name).join(', '));
  for (const m of ours) {
    if (m.type === 'counter') assert.match(m.name, /_total$/, `counter ${m.name} ends in _total`);
    else assert.doesNotMatch(m.name, /_total$/, `${m.type} ${m.name} does not end in _total`);
  }
  for (const m of ours) {
    // A unit (or what is counted) closes every name.
    assert.match(m.name, /_(seconds|bytes|messages|runs|steps|tokens|requests|total|info)(_total)?$/, `${m.name} names its unit`);
  }
});

test('queue lag per function: messages waiting, and how old the oldest is', async () => {
  const [first, second] = [newRunId(), newRunId()];
  await t.p.queue.publish('tally', { runId: first, seq: 0 });
  await t.p.queue.publish('tally', { runId: second, seq: 0 });
  await new Promise((resolve) => setTimeout(resolve, 30));
  const text = await t.p.metrics.registry.metrics();
  assert.equal(sample(text, 'baton_queue_lag_messages', { function: 'tally' }), 2);
  assert.equal(sample(text, 'baton_queue_pending_messages', { function: 'tally' }), 0);
  const age = sample(text, 'baton_queue_lag_seconds', { function: 'tally' });
  assert.ok(age !== undefined && age >= 0.02 && age < 30, `oldest message age ${age}`);
  // Drain them (their runs do not exist: the claim drops them).
  const taken = await t.p.queue.read(['tally'], 'drain', 10, 100);
  for (const d of taken) await t.p.queue.ack(d);
});

test('reclaims and sweeper repairs are counted', async () => {
  // A consumer takes a run's message and dies without acking: a worker reclaims it after a lease.
  const reclaimed = await trigger(t.api, 'tally', {});
  const [orphan] = await t.p.queue.read(['tally'], 'dead-consumer', 1, 500);
  assert.equal(orphan.message.runId, reclaimed);
  // A run whose wake-up was lost (never published): the sweeper re-publishes it.
  const lost = newRunId();
  await createRun(t.p.db, { id: lost, function: 'tally', tenant: 'default', input: {}, start: 'a' });

  const worker = createWorker(t.p);
  await worker.start();
  try {
    await waitForRun(t.p, reclaimed, ['succeeded'], 20_000);
    await waitForRun(t.p, lost, ['succeeded'], 20_000);
  } finally {
    await worker.stop(2000);
  }
  const text = await t.p.metrics.registry.metrics();
  assert.ok((sample(text, 'baton_queue_reclaimed_messages_total', { function: 'tally' }) ?? 0) >= 1, 'a reclaim counted');
  assert.ok((sample(text, 'baton_sweeper_repaired_runs_total', { function: 'tally' }) ?? 0) >= 1, 'a sweeper repair counted');
  assert.ok((sample(text, 'baton_steps_total', { function: 'tally', kind: 'compute', outcome: 'committed' }) ?? 0) >= 4);
});

test('api and worker processes serve /metrics on BATON_METRICS_PORT, bound to 127.0.0.1', async (tc) => {
  const [apiMetrics, workerMetrics] = [await freePort(), await freePort()];
  const procs: BatonProcess[] = [];
  tc.after(() => stopAll(procs, 'SIGTERM'));
  const env = { ...t.env, BATON_FUNCTIONS_DIR: 'functions' };
  const api = spawnBaton('api', { ...env, BATON_METRICS_PORT: String(apiMetrics) });
  const worker = spawnBaton('worker', { ...env, BATON_METRICS_PORT: String(workerMetrics) }, 'metrics-worker');
  procs.push(api, worker);
  const apiLine = await api.waitForLine(/baton api listening on /, 30_000);
  const workerLine = await worker.waitForLine(/^baton worker /, 30_000);
  assert.match(apiLine, new RegExp(`metrics http://127\\.0\\.0\\.1:${apiMetrics}/metrics`));
  assert.match(workerLine, new RegExp(`metrics http://127\\.0\\.0\\.1:${workerMetrics}/metrics`));
  const apiUrl = /listening on (\S+)/.exec(apiLine)?.[1] as string;

  assert.equal((await fetch(`${apiUrl}/metrics`)).status, 404);
  await fetch(`${apiUrl}/healthz`);
  const fromApi = await waitFor(async () => {
    const text = await (await fetch(`http://127.0.0.1:${apiMetrics}/metrics`)).text();
    return sample(text, 'baton_http_requests_total', { route: '/healthz', status: '200' }) ? text : null;
  }, 'the API counted /healthz');
  assert.match(fromApi, /^# TYPE baton_http_request_duration_seconds histogram$/m);
  const fromWorker = await (await fetch(`http://127.0.0.1:${workerMetrics}/metrics`)).text();
  assert.ok(sample(fromWorker, 'baton_queue_lag_messages', { function: 'pr-review' }) !== undefined, 'the worker reports its queues');
  assert.equal((await fetch(`http://127.0.0.1:${workerMetrics}/other`)).status, 404);
});

test('a function (worker --serve), a dispatcher and the housekeeper serve /metrics too', async (tc) => {
  const env = { ...t.env, BATON_FUNCTIONS_DIR: 'functions', HOST: '127.0.0.1', PORT: '0' };
  const shapes = [
    { args: ['worker', '--serve', 'pr-review'], line: /^baton worker --serve: pr-review on \S+ \(revision unknown, metrics (\S+)\)$/m },
    { args: ['worker', 'pr-review', '--dispatch', 'http://127.0.0.1:9/invoke'], line: /^baton worker \S+: pr-review \(concurrency \d+, dispatching to \S+, metrics (\S+)\)$/m },
    { args: ['worker', '--housekeeping'], line: /^baton worker \S+: housekeeping \(delayed wake-ups, sweeper, metrics (\S+)\)$/m },
  ];
  for (const shape of shapes) {
    const child = startCli(shape.args, { env });
    tc.after(async () => {
      child.signal('SIGTERM');
      await child.done;
    });
    const url = await waitFor(() => shape.line.exec(child.output())?.[1], `${shape.args.join(' ')} to start`, 30_000);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(url)).text();
    assert.match(text, /^# TYPE baton_steps_total counter$/m, shape.args.join(' '));
  }
});
