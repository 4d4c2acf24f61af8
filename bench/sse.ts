/**
 * `npm run bench:sse` — event streams at scale: 2,000 concurrent SSE streams on 100
 * live runs must leave the database and the API's other routes as they were.
 *
 * `baton api` and one `baton worker` as separate processes with default settings,
 * API keys on. 100 `ticker` runs keep moving (steps of 1 s, an LLM call's wait) for the whole bench,
 * spread over 20 tenants; each tenant opens 100 streams on its runs (its limit,
 * BATON_MAX_STREAMS_PER_TENANT's default), 2,000 in all. Measured for `--seconds`
 * (default 10) before the streams open and again while they are all open:
 *   - database transactions per second (pg_stat_database of the bench's database:
 *     every statement outside a transaction counts as one), the API process's CPU,
 *     the runs' steps per second and events delivered per second, with no other request;
 *   - then `GET /v1/runs?limit=20` under autocannon (10 connections): p50, p99, requests/s.
 * Then one stream more for a tenant at its limit must be refused (429).
 *
 * The stream clients run in a process of their own (bench/lib/sse-clients.ts).
 *
 * Options: --streams N (2000), --runs N (100), --seconds S (10), --step-ms MS (1000).
 */
import fs from 'node:fs';
import { fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { sql } from 'drizzle-orm';
import { query } from '../runtime/db/connect.ts';
import { createApiKey } from '../runtime/store/api-keys.ts';
import { startStack } from './lib/stack.ts';

const { values } = parseArgs({ options: { streams: { type: 'string' }, runs: { type: 'string' }, seconds: { type: 'string' }, 'step-ms': { type: 'string' } } });
const STREAMS = Number(values.streams ?? 2000);
const RUNS = Number(values.runs ?? 100);
const SECONDS = Number(values.seconds ?? 10);
const PER_TENANT = 100; // BATON_MAX_STREAMS_PER_TENANT's default
const TENANTS = Math.max(1, Math.ceil(STREAMS / PER_TENANT));
/** A step's wait, about an LLM call's. */
const STEP_MS = Number(values['step-ms'] ?? 1000);

const cpuSeconds = (pid: number): number => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100/s)
};

interface Sample {
  dbTps: number;
  p50: number;
  p99: number;
  rps: number;
  errors: number;
  apiCpu: number;
  stepsPerSec: number;
  eventsPerSec: number;
}

/** The stream clients' process (bench/lib/sse-clients.ts). */
function startClients() {
  const child = fork(path.join(import.meta.dirname, 'lib/sse-clients.ts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(message: object, reply: string) =>
    new Promise<T>((resolve) => {
      const on = (m: { type: string } & T) => {
        if (m.type !== reply) return;
        child.off('message', on);
        resolve(m);
      };
      child.on('message', on);
      child.send(message);
    });
  return {
    open: (streams: Array<{ url: string; key: string }>) => ask<{ statuses: number[] }>({ type: 'open', streams }, 'opened').then((r) => r.statuses),
    events: () => ask<{ events: number }>({ type: 'count' }, 'events').then((r) => r.events),
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send({ type: 'close' });
      }),
  };
}

async function main(): Promise<void> {
  const stack = await startStack({ workers: 1, env: { BATON_AUTH: 'on', BATON_FUNCTIONS_DIR: path.join(import.meta.dirname, 'functions') } });
  const api = stack.api!.url;
  const clients = startClients();

  const runIds: string[] = [];
  const keys: string[] = [];
  try {
    process.stderr.write(`starting ${RUNS} runs for ${TENANTS} tenants…\n`);
    for (let t = 0; t < TENANTS; t++) keys.push((await createApiKey(stack.db, `tenant-${t}`)).key);
    const runTenant = (i: number) => i % TENANTS;
    for (let i = 0; i < RUNS; i++) {
      const res = await fetch(`${api}/v1/functions/ticker/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys[runTenant(i)]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ steps: 100_000, ms: STEP_MS }),
      });
      if (res.status !== 202) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
      runIds.push(((await res.json()) as { id: string }).id);
    }

    const transactions = async () => {
      const rows = await query<{ n: string }>(stack.db, sql`select (xact_commit + xact_rollback)::text as n from pg_stat_database where datname = ${stack.dbName}`);
      return Number(rows[0].n);
    };
    const steps = async () => Number((await query<{ n: string }>(stack.db, sql`select count(*)::text as n from steps`))[0].n);
    const events = () => clients.events();

    async function sample(): Promise<Sample> {
      // First the database and the API process alone (no other requests), then the other route under load.
      const [tx0, st0, cpu0, ev0, t0] = [await transactions(), await steps(), cpuSeconds(stack.api!.pid), await events(), Date.now()];
      await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
      const secs = (Date.now() - t0) / 1000;
      const [tx1, st1, cpu1, ev1] = [await transactions(), await steps(), cpuSeconds(stack.api!.pid), await events()];
      const r = await autocannon({ url: `${api}/v1/runs?limit=20`, headers: { authorization: `Bearer ${keys[0]}` }, connections: 10, duration: SECONDS });
      return {
        dbTps: (tx1 - tx0) / secs,
        p50: r.latency.p50,
        p99: r.latency.p99,
        rps: r.requests.average,
        errors: r.errors + r.timeouts + r.non2xx,
        apiCpu: (100 * (cpu1 - cpu0)) / secs,
        stepsPerSec: (st1 - st0) / secs,
        eventsPerSec: (ev1 - ev0) / secs,
      };
    }

    // Warm up (the runs get going, the caches fill), then measure without streams.
    await autocannon({ url: `${api}/v1/runs?limit=20`, headers: { authorization: `Bearer ${keys[0]}` }, connections: 10, duration: 2 });
    process.stderr.write('measuring without streams…\n');
    const before = await sample();
    process.stderr.write(`opening ${STREAMS} streams…\n`);

    const started = Date.now();
    const wanted = Array.from({ length: STREAMS }, (_, n) => {
      const tenant = n % TENANTS;
      // A run of the stream's own tenant.
      const own = runIds.filter((_, r) => runTenant(r) === tenant);
      return { url: `${api}/v1/runs/${own[Math.floor(n / TENANTS) % own.length]}/events`, key: keys[tenant] };
    });
    const statuses = await clients.open(wanted);
    const open = statuses.filter((st) => st === 200).length;
    const refusedOpen = STREAMS - open;
    const connectS = (Date.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    process.stderr.write('measuring with the streams open…\n');
    const during = await sample();
    const extraRes = await fetch(`${api}/v1/runs/${runIds[0]}/events`, { headers: { authorization: `Bearer ${keys[runTenant(0)]}` } });
    const extra = { status: extraRes.status };
    await extraRes.body?.cancel();

    const row = (label: string, a: string, b: string, ratio: string) => `| ${label} | ${a} | ${b} | ${ratio} |`;
    const f = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
    const ratio = (a: number, b: number) => (a > 0 ? `×${(b / a).toFixed(2)}` : '—');
    console.log(`\nEvent streams: ${f(STREAMS)} streams (${TENANTS} tenants × ${Math.ceil(STREAMS / TENANTS)}) on ${RUNS} live runs; ${SECONDS} s per sample; ${os.cpus().length} cores`);
    console.log(`${open} streams open in ${connectS.toFixed(1)} s (read by a separate client process); refused while opening: ${refusedOpen}; one more for a tenant at its limit: HTTP ${extra.status}\n`);
    console.log('| measure | before (no streams) | during | ratio |');
    console.log('|---|---|---|---|');
    console.log(row('database transactions/s', f(before.dbTps), f(during.dbTps), ratio(before.dbTps, during.dbTps)));
    console.log(row('GET /v1/runs p50 (ms)', f(before.p50, 1), f(during.p50, 1), ratio(before.p50, during.p50)));
    console.log(row('GET /v1/runs p99 (ms)', f(before.p99, 1), f(during.p99, 1), ratio(before.p99, during.p99)));
    console.log(row('GET /v1/runs requests/s', f(before.rps), f(during.rps), ratio(before.rps, during.rps)));
    console.log(row('GET /v1/runs errors', f(before.errors), f(during.errors), ''));
    console.log(row('API process CPU (%, no other request)', f(before.apiCpu), f(during.apiCpu), ratio(before.apiCpu, during.apiCpu)));
    console.log(row('steps/s of the live runs', f(before.stepsPerSec), f(during.stepsPerSec), ratio(before.stepsPerSec, during.stepsPerSec)));
    console.log(row('events delivered/s (all streams)', '—', f(during.eventsPerSec), ''));
    if (refusedOpen > 0 || extra.status !== 429) process.exitCode = 1;
  } finally {
    await clients.close();
    await Promise.all(
      runIds.map((id, i) => fetch(`${api}/v1/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${keys[i % TENANTS]}` } }).catch(() => {})),
    );
    await stack.close();
  }
}

await main();
