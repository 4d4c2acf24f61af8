/**
 * `baton dev` (what `npm start` runs): the API, a worker, the demo's tool servers and
 * the demo agent in one process. Without DATABASE_URL it uses embedded PostgreSQL
 * (PGlite) under .baton/; without REDIS_URL an in-process queue, rebuilt from the
 * database at start. It triggers one demo run and prints its steps as they complete.
 *
 *   --once      exit after the demo run (exit code 0 when it succeeded)
 *   --no-demo   do not trigger the demo run
 */
import { parseArgs } from 'node:util';
import { count } from 'drizzle-orm';
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { exampleInput } from '../../runtime/functions.ts';
import { createPlatform, type Platform } from '../../runtime/platform.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { loadPrivateKey } from '../../tools/lib/capability.ts';
import { runs } from '../../schema/tables.ts';
import { localApiKey, signingKeys, startLocalTools, takeLock } from '../lib/embedded.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';

const DEMO = 'pr-review';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { once: { type: 'boolean' }, 'no-demo': { type: 'boolean' } } });
  const env = { ...process.env, BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'warn' };
  const config = loadConfig(env, { host: process.env.HOST ?? '127.0.0.1' });
  const unlock = takeLock(config.dataDir);
  const cleanup: Array<() => Promise<unknown>> = [];
  let stopping = false;
  // Listen before anything is printed: a Ctrl-C right after "Ready" must find the handler.
  const stopSignal = untilSignal();
  try {
    const keys = signingKeys(config.dataDir, config.toolSigningKey);
    const tools = await startLocalTools(config.dataDir, keys.publicKeyPem);
    cleanup.push(() => tools.close());
    const database = await openDatabase({ url: config.databaseUrl, dataDir: `${config.dataDir}/pgdata` });
    cleanup.push(() => database.close());
    await migrate(database.db);
    const p = await createPlatform(
      { ...config, toolUrls: { ...tools.urls, ...config.toolUrls } },
      { database, allowMemoryQueue: true, signingKey: loadPrivateKey(keys.privateKeyPem) },
    );
    cleanup.push(() => p.close());
    const worker = createWorker(p, { rebuildAtStart: p.queue.kind === 'memory' });
    await worker.start();
    cleanup.push(() => worker.stop(5000));
    const api = await serveApp(createApi(p), config.port, config.host);
    cleanup.push(() => api.close());

    const apiKey = config.auth ? await localApiKey(p.db, config.dataDir) : null;
    const [{ earlier }] = await p.db.select({ earlier: count() }).from(runs);
    printBanner(p, api.url, database.where, tools.repo, apiKey, earlier);

    let demoOk = true;
    if (!values['no-demo'] && p.functions.has(DEMO)) demoOk = await demoRun(p, api.url, apiKey);
    if (values.once) return demoOk ? 0 : 1;
    console.log('\nReady. Ctrl-C to stop.');
    await stopSignal;
    console.log('\nStopping…');
    stopping = true;
    return 0;
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => {});
    unlock();
    if (stopping) console.log('Stopped.');
  }
}

function printBanner(p: Platform, url: string, where: string, repo: string, apiKey: string | null, earlier: number) {
  const auth = apiKey ? ` -H "Authorization: Bearer $(cat ${p.config.dataDir}/api-key)"` : '';
  console.log(`Baton dev — everything in one process
  API        ${url}   (runs: ${url}/ui)
  database   ${where}
  queue      ${p.queue.kind === 'memory' ? 'in-process (rebuilt from the database at start)' : 'Redis'}
  model      ${p.model.description}
  tools      git (${repo}), review
  functions  ${[...p.functions.keys()].join(', ')}`);
  if (apiKey) console.log(`  API key    ${apiKey}   (tenant "local"; kept in ${p.config.dataDir}/api-key)`);
  else console.log('  warning    BATON_AUTH=off: the API accepts requests without an API key');
  if (earlier > 0) console.log(`  history    ${earlier} earlier run(s) in the database`);
  if (p.functions.has(DEMO)) {
    console.log(`
Trigger a review yourself:
  curl -sS -X POST ${url}/v1/functions/${DEMO}/runs${auth} -H 'Content-Type: application/json' -d @functions/${DEMO}/example.json`);
  }
}

/** Triggers the demo over real HTTP and prints each step as it completes, then the output. */
async function demoRun(p: Platform, url: string, apiKey: string | null): Promise<boolean> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const input = exampleInput(p.config.functionsDir, DEMO);
  const started = performance.now();
  const res = await fetch(`${url}/v1/functions/${DEMO}/runs`, { method: 'POST', headers, body: JSON.stringify(input) });
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
          if (s.status === 'running' || printed.has(key)) continue;
          printed.add(key);
          const mark = s.status === 'succeeded' ? '✓' : '✗';
          const err = s.status === 'failed' ? `  attempt ${s.attempt}: ${(s.error as { message?: string } | null)?.message ?? ''}` : '';
          console.log(`  ${mark} ${String(s.seq).padStart(2)} ${s.name.padEnd(12)} ${String(s.kind ?? '').padEnd(7)} ${String(s.durationMs ?? 0).padStart(6)} ms${err}`);
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
