/**
 * Recovery time: from SIGKILL of a worker in the middle of a step (waiting on its LLM
 * call) to that step running again on another worker, over several trials.
 *
 *   npm run bench:recovery [-- --lease-ms 4000 --trials 5]
 *
 * Two `baton worker` processes serve the demo agent (pr-review) against real
 * PostgreSQL and Redis (DATABASE_URL / REDIS_URL, default 127.0.0.1). In each trial
 * the LLM stub holds the review step's call; the worker holding the run's lease is
 * killed (and a replacement started), and the time is read from the `steps` row:
 * its `started_at` once another worker has claimed it. The lease is the default
 * (BATON_LEASE_MS unset) unless --lease-ms says otherwise. Recovery is bounded by
 * the lease (the dead worker's lease must run out) plus the reclaim interval
 * (lease/4) and the re-check delay; the target is under 2× the lease.
 */
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../runtime/config.ts';
import { query } from '../runtime/db/connect.ts';
import { startTestPlatform, trigger, waitFor, waitForRun } from '../test/helpers/platform.ts';
import { type BatonProcess, startWorkerProcess, stopAll } from '../test/helpers/processes.ts';

const { values } = parseArgs({ options: { 'lease-ms': { type: 'string' }, trials: { type: 'string', default: '5' } } });
const leaseMs = values['lease-ms'] ? Number(values['lease-ms']) : loadConfig({}).leaseMs;
const trials = Number(values.trials);

// Odd calls (the first try of each trial's review step) hang until their worker dies.
const t = await startTestPlatform({ worker: false, llm: { delayMs: (n) => (n % 2 === 1 ? 600_000 : 0) } });
const env = { ...t.env, ...(values['lease-ms'] ? { BATON_LEASE_MS: String(leaseMs) } : {}) };
const workers = new Map<string, BatonProcess>(); // consumer → process
const all: BatonProcess[] = [];
let spawned = 0;
async function spawnWorker() {
  const w = await startWorkerProcess(env, `bench${++spawned}`);
  all.push(w);
  const consumer = /^baton worker (\S+):/.exec(w.lines.find((l) => l.startsWith('baton worker ')) ?? '')?.[1] ?? '';
  workers.set(consumer, w);
}

const results: Array<{ trial: number; ms: number; from: string; to: string }> = [];
try {
  await Promise.all([spawnWorker(), spawnWorker()]);
  for (let trial = 1; trial <= trials; trial++) {
    const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: trial });
    await waitFor(() => (t.llm?.calls.length ?? 0) === 2 * trial - 1 && t.llm?.inflight, 'the review step to be in its LLM call', 30_000);
    const [held] = await query<{ owner: string }>(t.p.db, sql`select lease_owner as owner from runs where id = ${id}`);
    const consumer = held.owner.split('/')[0];
    const victim = workers.get(consumer);
    if (!victim) throw new Error(`no worker process for consumer ${consumer}`);
    const killedAt = Date.now();
    victim.signal('SIGKILL');
    workers.delete(consumer);
    void spawnWorker(); // keep two workers, as a Deployment would
    const [again] = await waitFor(
      () =>
        query<{ worker: string; started: number }>(
          t.p.db,
          sql`select worker, (extract(epoch from started_at) * 1000)::float8 as started
              from steps where run_id = ${id} and seq = 1 and worker <> ${consumer}`,
        ).then((rows) => (rows.length ? rows : null)),
      'the step to run again',
      10 * leaseMs + 30_000,
    );
    results.push({ trial, ms: Math.round(again.started - killedAt), from: consumer, to: again.worker });
    await waitForRun(t.p, id, undefined, 30_000);
    console.error(`trial ${trial}: ${results.at(-1)?.ms} ms`);
  }
} finally {
  await stopAll(all);
  await t.close();
}

const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : Math.round((sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2);
console.log(`\nRecovery after SIGKILL mid-step (BATON_LEASE_MS=${leaseMs}${values['lease-ms'] ? '' : ', the default'}; heartbeat ${Math.floor(leaseMs / 3)} ms)\n`);
console.log('trial  recovery  killed worker → new worker');
for (const r of results) console.log(`${String(r.trial).padStart(5)}  ${`${r.ms} ms`.padStart(8)}  ${r.from} → ${r.to}`);
console.log(`\nmedian ${median} ms, min ${sorted[0]} ms, max ${sorted.at(-1)} ms over ${results.length} trials`);
console.log(`target < 2 × lease = ${2 * leaseMs} ms: ${median < 2 * leaseMs ? 'met' : 'NOT met'} (${(median / leaseMs).toFixed(2)} × lease)`);
process.exitCode = median < 2 * leaseMs ? 0 : 1;
