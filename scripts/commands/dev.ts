/**
 * `baton dev` (what `npm start` runs): the API, a worker, the demo's tool servers and
 * the demo agent in one process. Without DATABASE_URL it uses embedded PostgreSQL
 * (PGlite) under .baton/; without REDIS_URL an in-process queue, rebuilt from the
 * database at start. It triggers one demo run and prints its steps as they complete.
 *
 * While it runs, the CLI on this machine finds it through .baton/dev.json (its URL,
 * and an admin endpoint through which `baton keys` reaches the embedded database).
 */
import path from 'node:path';
import { count } from 'drizzle-orm';
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { exampleInput } from '../../runtime/functions.ts';
import { createPlatform, type Platform } from '../../runtime/platform.ts';
import { getRunWithSteps, stepView } from '../../runtime/store/runs.ts';
import { preloadStepLibraries } from '../../runtime/worker/preload.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { loadPrivateKey } from '../../tools/lib/capability.ts';
import { runs } from '../../schema/tables.ts';
import { parseCommand, usageError } from '../lib/cli.ts';
import { createAdminToken, dbKeyStore, devAdminApp } from '../lib/dev-admin.ts';
import { localApiKey, startLocalTools, takeLock } from '../lib/embedded.ts';
import { writeRecord } from '../lib/local-processes.ts';
import { serveMetrics } from '../lib/metrics-server.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';
import { embeddedSigningKeys } from '../lib/signing-keys.ts';

export const usage = 'usage: baton dev [--once] [--no-demo] [--demo FUNCTION]';

export const help = `${usage}

Everything in one process, with nothing to install: the API (PORT, 8080, on
127.0.0.1), a worker, the demo's tool servers (git, review) and the offline model.
Without DATABASE_URL the database is embedded PostgreSQL (PGlite) in the data
directory (.baton/); without REDIS_URL the queue is in-process. Runs are kept across
restarts. It triggers a demo run and prints its steps; Ctrl-C stops it.

While it runs, \`baton run\`, \`baton runs\`, \`baton keys\`… on this machine talk to it
(they find its URL and local API key in the data directory).

  --once            exit after the demo run: 0 if it succeeded, 1 otherwise
  --no-demo         do not trigger a demo run
  --demo FUNCTION   the function to demo (default pr-agent, else pr-review if there is one, else the
                    first function with an example.json)

Environment: PORT, HOST, DATABASE_URL, REDIS_URL, OPENAI_API_KEY, BATON_DATA_DIR,
BATON_FUNCTIONS_DIR, BATON_AUTH, BATON_METRICS_PORT (README "Configuration").`;

/** The function the demo runs: --demo, else pr-agent, else pr-review, else the first function with an example input. */
function demoFunction(p: Platform, chosen: string | undefined): string | null {
  if (chosen) {
    if (!p.functions.has(chosen)) throw usageError(`no function "${chosen}" in ${p.config.functionsDir}`, usage);
    return chosen;
  }
  // The agent loop first: the model choosing tools is what people come to see.
  if (p.functions.has('pr-agent')) return 'pr-agent';
  if (p.functions.has('pr-review')) return 'pr-review';
  for (const name of p.functions.keys()) {
    try {
      exampleInput(p.config.functionsDir, name);
      return name;
    } catch {
      // no example.json: not demo-able
    }
  }
  return null;
}

const STOP_GRACE_MS = 5000;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { once: { type: 'boolean' }, 'no-demo': { type: 'boolean' }, demo: { type: 'string' } }, usage, { max: 0 });
  const env = { ...process.env, BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'warn' };
  const config = loadConfig(env, { host: process.env.HOST ?? '127.0.0.1' });
  const unlock = takeLock(config.dataDir);
  const cleanup: Array<() => Promise<unknown>> = [];
  let stopping = false;
  // Listen before anything is printed: a Ctrl-C right after "Ready" must find the handler.
  const stopSignal = untilSignal();
  try {
    const keys = embeddedSigningKeys(config.dataDir, config.toolSigningKey);
    const tools = await startLocalTools(config.dataDir, keys.publicKeyPem);
    cleanup.push(() => tools.close());
    const database = await openDatabase({ url: config.databaseUrl, dataDir: path.join(config.dataDir, 'pgdata') });
    cleanup.push(() => database.close());
    await migrate(database.db);
    const p = await createPlatform(
      { ...config, toolUrls: { ...tools.urls, ...config.toolUrls } },
      { database, allowMemoryQueue: true, signingKey: loadPrivateKey(keys.privateKeyPem) },
    );
    cleanup.push(() => p.close());
    const demo = values['no-demo'] ? null : demoFunction(p, values.demo);
    const worker = createWorker(p, { rebuildAtStart: p.queue.kind === 'memory' });
    await worker.start();
    preloadStepLibraries(p.model, p.functions);
    cleanup.push(() => worker.stop(STOP_GRACE_MS));
    const api = await serveApp(createApi(p), config.port, config.host);
    cleanup.push(() => api.close());
    const metrics = await serveMetrics(p.metrics, config, (line) => console.error(line));
    if (metrics) cleanup.push(() => metrics.close());

    const apiKey = config.auth ? await localApiKey(p.db, config.dataDir) : null;
    // The CLI on this machine finds us here; `baton keys` goes through the admin endpoint.
    const adminToken = createAdminToken();
    const admin = await serveApp(devAdminApp(dbKeyStore(p.db), adminToken), 0, '127.0.0.1');
    cleanup.push(() => admin.close());
    const forget = writeRecord(config.dataDir, 'dev.json', { pid: process.pid, url: api.url, adminUrl: admin.url, adminToken });
    cleanup.push(async () => forget());

    const [{ earlier }] = await p.db.select({ earlier: count() }).from(runs);
    printBanner(p, api.url, database.where, tools.repo, apiKey, earlier, metrics?.url ?? null, demo);

    let demoOk = true;
    if (demo) demoOk = await demoRun(p, api.url, apiKey, demo);
    if (values.once) return demoOk ? 0 : 1;
    console.log('\nReady. Ctrl-C to stop.');
    await stopSignal;
    console.log(`\nStopping… (${worker.active} step(s) in flight get up to ${STOP_GRACE_MS / 1000} s; Ctrl-C again to exit at once)`);
    stopping = true;
    return 0;
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => {});
    unlock();
    if (stopping) console.log('Stopped.');
  }
}

/** A path as the user would type it here: relative below the current directory, else absolute. */
function shortPath(file: string): string {
  const relative = path.relative('.', file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

function printBanner(
  p: Platform,
  url: string,
  where: string,
  repo: string,
  apiKey: string | null,
  earlier: number,
  metricsUrl: string | null,
  demo: string | null,
) {
  const keyFile = shortPath(path.join(p.config.dataDir, 'api-key'));
  const auth = apiKey ? ` -H "Authorization: Bearer $(cat ${keyFile})"` : '';
  console.log(`Baton dev — everything in one process
  API        ${url}   (run inspector: ${url}/ui, sign in with the API key below)
  database   ${where}
  queue      ${p.queue.kind === 'memory' ? 'in-process (rebuilt from the database at start)' : 'Redis'}
  model      ${p.model.description}
  tools      git (${repo}), review
  functions  ${[...p.functions.keys()].join(', ') || '(none in ' + p.config.functionsDir + ')'}`);
  if (metricsUrl) console.log(`  metrics    ${metricsUrl}`);
  if (apiKey) console.log(`  API key    ${apiKey}   (tenant "local"; kept in ${p.config.dataDir}/api-key)`);
  else console.log('  warning    BATON_AUTH=off: the API accepts requests without an API key');
  if (earlier > 0) console.log(`  history    ${earlier} earlier run(s) in the database`);
  if (demo) {
    const example = shortPath(path.join(p.config.functionsDir, demo, 'example.json'));
    console.log(`
Trigger a run yourself (the CLI finds this process):
  npx baton run ${demo} --follow
  curl -sS -X POST ${url}/v1/functions/${demo}/runs${auth} -H 'Content-Type: application/json' -d @${example}`);
  }
}

/** Triggers the demo over real HTTP and prints each step as it completes, then the output. */
async function demoRun(p: Platform, url: string, apiKey: string | null, demo: string): Promise<boolean> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const input = exampleInput(p.config.functionsDir, demo);
  const started = performance.now();
  const res = await fetch(`${url}/v1/functions/${demo}/runs`, { method: 'POST', headers, body: JSON.stringify(input) });
  const accepted = (await res.json()) as { id: string };
  if (res.status !== 202) throw new Error(`the demo run was not accepted: ${res.status} ${JSON.stringify(accepted)}`);
  console.log(`\nDemo run ${accepted.id} (${res.status} Accepted in ${(performance.now() - started).toFixed(1)} ms):`);

  const printed = new Set<string>();
  return new Promise<boolean>((resolve) => {
    let unsubscribe: (() => Promise<void>) | undefined;
    let checking = false;
    const check = async () => {
      if (checking) return;
      checking = true;
      try {
        const full = await getRunWithSteps(p.db, accepted.id);
        if (!full) return;
        for (const s of full.steps) {
          const key = `${s.seq}:${s.attempt}:${s.status}`;
          if ((s.status !== 'succeeded' && s.status !== 'failed') || printed.has(key)) continue;
          printed.add(key);
          const mark = s.status === 'succeeded' ? '✓' : '✗';
          const err = s.status === 'failed' ? `  attempt ${s.attempt}: ${(s.error as { message?: string } | null)?.message ?? ''}` : '';
          // A fan-out's branches read as `tool ⋔2`: they run side by side, their lines interleave.
          const name = s.branch ? `${s.name} ⋔${s.branch}` : s.name;
          const summary = stepView(s).summary;
          console.log(`  ${mark} ${String(s.seq).padStart(2)} ${name.padEnd(12)} ${String(s.kind ?? '').padEnd(7)} ${String(s.durationMs ?? 0).padStart(6)} ms${err}${summary ? `  ${summary}` : ''}`);
        }
        const { run } = full;
        if (run.status === 'succeeded' || run.status === 'failed' || run.status === 'cancelled') {
          const total = (performance.now() - started).toFixed(0);
          console.log(`Run ${run.status} in ${total} ms. Output:`);
          console.log(formatOutput(run.status === 'succeeded' ? run.output : run.error));
          clearInterval(poll);
          await unsubscribe?.();
          resolve(run.status === 'succeeded');
        }
      } finally {
        checking = false;
      }
    };
    const poll = setInterval(() => void check(), 500);
    p.events
      .subscribe(accepted.id, (n) => {
        if (n.type === 'changed') void check();
      })
      .then((u) => {
        unsubscribe = u;
        void check();
      });
  });
}

/** Top-level keys one per line; multi-line strings (a review) as indented blocks. */
function formatOutput(value: unknown): string {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return `  ${JSON.stringify(value)}`;
  return Object.entries(value)
    .map(([key, v]) =>
      typeof v === 'string' && v.includes('\n')
        ? `  ${key}:\n${v
            .split('\n')
            .map((line) => `    ${line}`)
            .join('\n')}`
        : `  ${key}: ${typeof v === 'string' ? v : JSON.stringify(v)}`,
    )
    .join('\n');
}
