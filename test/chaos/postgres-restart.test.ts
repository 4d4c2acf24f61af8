/**
 * PostgreSQL "restarts" during a 100-run load on the API process and 3 workers.
 * The PostgreSQL server is shared with other test files running in parallel, so it
 * is not really restarted: the test terminates its own database's backends
 * (pg_terminate_backend, as a shutdown does: in-flight statements fail with 57P01)
 * and cuts the TCP proxy every process reaches it through for 4 s (connections
 * reset, new ones refused, as while the server is down). Clients POST with an
 * Idempotency-Key and retry 503s. Checked: the API never answers 500 (only 202/200
 * or 503), every run succeeds, and no run was created twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eq } from 'drizzle-orm';
import pg from 'pg';
import { runs } from '../../schema/tables.ts';
import { submitRun, verifyReviewRuns, waitForRuns } from '../helpers/chaos.ts';
import { startTestPlatform } from '../helpers/platform.ts';
import { startApiProcess, startWorkerProcess, stopAll, teardown, runAlone } from '../helpers/processes.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const RUNS = 100;
const OUTAGE_MS = 4000;

runAlone();

test('Postgres restart during a 100-run load: the API never answers 500, all runs succeed', { timeout: 180_000 }, async (tc) => {
  const defer = teardown(tc);
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
  defer(() => proxy.close());
  const t = await startTestPlatform({
    worker: false,
    connectVia: (url) => proxy.via(url),
    llm: { delayMs: [200, 800] },
    env: { BATON_LEASE_MS: '1000', BATON_SWEEP_AFTER_MS: '3000' },
  });
  defer(async () => {
    await proxy.up();
    await t.close();
  });
  const procs = await Promise.all([startApiProcess(t.env), ...[1, 2, 3].map((i) => startWorkerProcess(t.env, `pg${i}`))]);
  defer(() => stopAll(procs));
  const api = procs[0] as Awaited<ReturnType<typeof startApiProcess>>;

  const statuses: number[] = [];
  const submit = (i: number) =>
    submitRun(api.url, { repo: 'acme/shop', pr: i + 1 }, { key: `pg-restart-${i}`, retryUntilMs: 60_000 }).then((r) => {
      statuses.push(...r.statuses);
      return r.id;
    });
  const started = Date.now();
  const first = await Promise.all(Array.from({ length: RUNS / 2 }, (_, i) => submit(i)));

  // The outage, while the first half runs and the second half is being submitted.
  const admin = new pg.Client({ connectionString: t.db.url });
  await admin.connect();
  const { rowCount: terminated } = await admin.query(
    'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
  );
  await admin.end();
  await proxy.down();
  const outageStarted = Date.now();
  const second = Array.from({ length: RUNS / 2 }, (_, i) => submit(RUNS / 2 + i));
  const polls: Promise<void>[] = first.slice(0, 20).map(async (id) => {
    const res = await fetch(`${api.url}/v1/runs/${id}`);
    statuses.push(res.status);
    if (res.status === 503) assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'database_unavailable');
    else await res.body?.cancel();
  });
  await Promise.all(polls);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - outageStarted))));
  await proxy.up();

  const ids = [...first, ...(await Promise.all(second))];
  await waitForRuns(t, ids, 120_000);
  const report = await verifyReviewRuns(t, ids);
  const count = (s: number) => statuses.filter((x) => x === s).length;
  assert.deepEqual([...new Set(statuses)].filter((s) => ![200, 202, 503].includes(s)), [], 'the API answered only 200, 202 or 503');
  assert.ok(count(503) > 0, 'the outage was visible to clients');
  const all = await t.p.db.select({ id: runs.id }).from(runs).where(eq(runs.function, 'pr-review'));
  assert.equal(all.length, RUNS, 'no run was created twice by a retried POST');
  console.log(
    `postgres restart: ${terminated} backends terminated, database cut for ${OUTAGE_MS / 1000} s under a ${RUNS}-run load; ` +
      `API answered ${count(202)}×202, ${count(200)}×200, ${count(503)}×503, 0×500; all ${RUNS} succeeded in ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s; ${report.comments} comments, duplicates ${report.duplicates}`,
  );
});
