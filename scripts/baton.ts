#!/usr/bin/env node
/**
 * The `baton` CLI: one binary, one verb per job.
 *   server side: api, worker, migrate, dev (what `npm start` runs), deploy
 *   client side: run, runs, functions, keys
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ main(argv: string[]): Promise<number | void> }> }> = {
  dev: { summary: 'everything in one process (embedded PostgreSQL, in-process queue) and a demo run', load: () => import('./commands/dev.ts') },
  api: { summary: 'serve the HTTP API (needs DATABASE_URL and REDIS_URL)', load: () => import('./commands/api.ts') },
  worker: { summary: 'run steps from the queue (needs DATABASE_URL and REDIS_URL); --serve, --dispatch URL, --housekeeping for Kubernetes roles', load: () => import('./commands/worker.ts') },
  migrate: { summary: 'apply database migrations', load: () => import('./commands/migrate.ts') },
  deploy: { summary: 'render and apply the Kubernetes objects (see `baton deploy --help`)', load: () => import('./commands/deploy.ts') },
  run: { summary: 'trigger a run: baton run FUNCTION [INPUT.json|-] [--follow]', load: () => import('./commands/run.ts') },
  runs: { summary: 'list runs, or show one: baton runs [RUN_ID] [--status S] [--function F]', load: () => import('./commands/runs.ts') },
  functions: { summary: 'list the functions the API serves', load: () => import('./commands/functions.ts') },
  keys: { summary: 'API keys: baton keys create --tenant NAME | list | revoke ID', load: () => import('./commands/keys.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: baton <command> [options]',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Environment: PORT, DATABASE_URL, REDIS_URL, OPENAI_API_KEY, OPENAI_BASE_URL, BATON_MODEL, BATON_CONCURRENCY,',
    'BATON_LEASE_MS, BATON_AUTH, BATON_URL, BATON_API_KEY (see README "Configuration").',
  ].join('\n');
}

const [name, ...argv] = process.argv.slice(2);
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(usage());
  process.exit(name ? 0 : 2);
}
const command = COMMANDS[name];
if (!command) {
  console.error(`baton: unknown command "${name}"\n\n${usage()}`);
  process.exit(2);
}
try {
  const code = await (await command.load()).main(argv);
  if (typeof code === 'number') process.exitCode = code;
} catch (err) {
  console.error(`baton ${name}: ${(err as Error).message}`);
  if (process.env.BATON_DEBUG) console.error(err);
  process.exitCode = 1;
}
