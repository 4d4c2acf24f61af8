/**
 * `npm run bench:api` — what a client feels:
 *   1. 202 latency of one POST /v1/functions/pr-review/runs at a time (the API only inserts and enqueues);
 *   2. the same under load (autocannon, 32 connections);
 *   3. end-to-end time of the demo run (POST → run.finished on the event stream) with the offline model.
 * On PostgreSQL + Redis (the local servers) and on the embedded default (PGlite + in-process queue).
 * Prints medians (and p95/p99). Options: --runs N (default 200 POSTs, 20 demo runs), --seconds S (load, default 5).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createApi } from '../runtime/api/app.ts';
import { loadConfig } from '../runtime/config.ts';
import { openDatabase } from '../runtime/db/connect.ts';
import { migrate } from '../runtime/db/migrate.ts';
import { createPlatform, type Platform } from '../runtime/platform.ts';
import { createWorker } from '../runtime/worker/worker.ts';
import { generateKeyPair, loadPrivateKey } from '../tools/lib/capability.ts';
import { serveApp } from '../scripts/lib/serve.ts';
import { startLocalTools } from '../scripts/lib/embedded.ts';
import { createTestDatabase } from '../test/helpers/db.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../test/helpers/redis.ts';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seconds: { type: 'string' } } });
const POSTS = Number(values.runs ?? 200);
const DEMOS = Math.max(5, Math.round(POSTS / 10));
const SECONDS = Number(values.seconds ?? 5);
const INPUT = JSON.stringify({ repo: 'acme/shop', pr: 42 });

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

interface Backend {
  label: string;
  /** A fresh platform (its own database and queue) and how to dispose of it. */
  open(): Promise<{ p: Platform; close(): Promise<void> }>;
}

/** POST latency and throughput of the API alone: no worker runs, so nothing competes with it. */
async function measureApi(p: Platform) {
  const served = await serveApp(createApi(p), 0, '127.0.0.1');
  const url = `${served.url}/v1/functions/pr-review/runs`;
  const post = () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INPUT });
  for (let i = 0; i < 20; i++) await (await post()).json(); // warm up
  const single: number[] = [];
  for (let i = 0; i < POSTS; i++) {
    const t0 = performance.now();
    const res = await post();
    await res.json();
    single.push(performance.now() - t0);
    if (res.status !== 202) throw new Error(`POST answered ${res.status}`);
  }
  const load = await autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body: INPUT, connections: 32, duration: SECONDS });
  await served.close(100);
  return { single, rps: load.requests.average, loadP50: load.latency.p50, loadP99: load.latency.p99, non2xx: load.non2xx };
}

/** Whole demo runs, one at a time: POST → the event stream's run.finished. */
async function measureRuns(p: Platform) {
  const worker = createWorker(p, { rebuildAtStart: p.queue.kind === 'memory' });
  await worker.start();
  const served = await serveApp(createApi(p), 0, '127.0.0.1');
  const demo: number[] = [];
  for (let i = 0; i < DEMOS + 3; i++) {
    const t0 = performance.now();
    const res = await fetch(`${served.url}/v1/functions/pr-review/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INPUT });
    const { id } = (await res.json()) as { id: string };
    const text = await (await fetch(`${served.url}/v1/runs/${id}/events`)).text();
    if (!text.includes('"status":"succeeded"')) throw new Error(`demo run did not succeed:\n${text.slice(-500)}`);
    if (i >= 3) demo.push(performance.now() - t0); // the first three warm up
  }
  await served.close(100);
  await worker.stop(2000);
  return demo;
}

const keys = generateKeyPair();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-'));
const tools = await startLocalTools(dir, keys.publicKeyPem);
const base = { BATON_AUTH: 'off', BATON_LOG_LEVEL: 'error' };
const backends: Backend[] = [
  {
    label: 'PostgreSQL + Redis',
    async open() {
      const db = await createTestDatabase();
      const prefix = testPrefix();
      const config = loadConfig({ ...base, DATABASE_URL: db.url, REDIS_URL, BATON_REDIS_PREFIX: prefix }, { toolUrls: tools.urls });
      const p = await createPlatform(config, { database: db.database, signingKey: loadPrivateKey(keys.privateKeyPem) });
      return { p, close: async () => (await p.close(), await db.drop(), await dropPrefix(prefix)) };
    },
  },
  {
    label: 'embedded (PGlite, in-process queue)',
    async open() {
      const dataDir = fs.mkdtempSync(path.join(dir, 'data-'));
      const database = await openDatabase({ dataDir: path.join(dataDir, 'pgdata') });
      await migrate(database.db);
      const config = loadConfig(base, { toolUrls: tools.urls, dataDir });
      const p = await createPlatform(config, { database, allowMemoryQueue: true, signingKey: loadPrivateKey(keys.privateKeyPem) });
      return { p, close: async () => (await p.close(), await database.close()) };
    },
  },
];
const results = [];
for (const b of backends) {
  const a = await b.open();
  const api = await measureApi(a.p);
  await a.close();
  const r = await b.open();
  const demo = await measureRuns(r.p);
  await r.close();
  results.push({ label: b.label, ...api, demo });
}
await tools.close();
fs.rmSync(dir, { recursive: true, force: true });

console.log(`\nBaton API — ${os.cpus().length} CPU(s), Node ${process.version}; ${POSTS} single POSTs, ${SECONDS} s of load at 32 connections, ${DEMOS} demo runs\n`);
console.log('| backend | 202 latency, one at a time (median / p95 / p99) | under load: req/s, median, p99 | demo run end to end (median / p95) |');
console.log('|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.label} | ${ms(pct(r.single, 50))} / ${ms(pct(r.single, 95))} / ${ms(pct(r.single, 99))} | ${r.rps.toFixed(0)} req/s, ${r.loadP50} ms, ${r.loadP99} ms${r.non2xx ? ` (${r.non2xx} non-2xx)` : ''} | ${ms(pct(r.demo, 50))} / ${ms(pct(r.demo, 95))} |`,
  );
}
process.exit(0);
