#!/usr/bin/env node
/**
 * The `baton` CLI: one binary, one verb per job.
 *   server side: dev (what `npm start` runs), api, worker, tools, migrate, deploy
 *   client side: run, runs, signal, functions, keys
 *
 * `baton <verb> --help` prints the verb's help and exits 0 without running anything.
 * Errors are one line on stderr. Exit codes: 0 ok, 1 failed, 2 usage, 3 API unreachable
 * (scripts/lib/cli.ts).
 */
import { CliError, type Command, EXIT } from './lib/cli.ts';

const VERBS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  dev: { summary: 'everything in one process (embedded PostgreSQL, in-process queue) and a demo run', load: () => import('./commands/dev.ts') },
  api: { summary: 'serve the HTTP API (needs DATABASE_URL and REDIS_URL)', load: () => import('./commands/api.ts') },
  worker: { summary: 'run steps from the queue (needs DATABASE_URL and REDIS_URL); Kubernetes roles: --serve, --dispatch, --housekeeping', load: () => import('./commands/worker.ts') },
  tools: { summary: "serve the demo's tool servers (git, review) for workers on this machine", load: () => import('./commands/tools.ts') },
  migrate: { summary: 'apply the database migrations to DATABASE_URL', load: () => import('./commands/migrate.ts') },
  deploy: { summary: 'render, validate and apply the Kubernetes objects', load: () => import('./commands/deploy.ts') },
  run: { summary: 'trigger a run: baton run FUNCTION [INPUT] [--follow]', load: () => import('./commands/run.ts') },
  runs: { summary: 'list runs, show or follow one, cancel, retry or replay it', load: () => import('./commands/runs.ts') },
  signal: { summary: 'send a signal to a waiting run: baton signal RUN_ID NAME [JSON]', load: () => import('./commands/signal.ts') },
  functions: { summary: 'list the functions the API serves', load: () => import('./commands/functions.ts') },
  keys: { summary: 'API keys (create, list, revoke) and the tool-token signing key pair', load: () => import('./commands/keys.ts') },
};

function overview(): string {
  const width = Math.max(...Object.keys(VERBS).map((c) => c.length));
  return [
    'usage: baton <verb> [options]        baton <verb> --help for a verb\'s options',
    '',
    ...Object.entries(VERBS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Exit codes: 0 ok, 1 failed (a run that failed or was cancelled), 2 usage, 3 the API could not be reached.',
    'Environment: DATABASE_URL, REDIS_URL, PORT, BATON_URL, BATON_API_KEY, OPENAI_API_KEY, … (README "Configuration").',
  ].join('\n');
}

/** --help or -h among the options (not after `--`, where arguments are taken as they are). */
function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

async function main(): Promise<number> {
  const [name, ...argv] = process.argv.slice(2);
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module');
    console.log((createRequire(import.meta.url)('../package.json') as { version: string }).version);
    return EXIT.ok;
  }
  if (!name) {
    console.error(overview());
    return EXIT.usage;
  }
  const verb = VERBS[name];
  if (!verb) {
    console.error(`baton: unknown verb "${name}"; the verbs are ${Object.keys(VERBS).join(', ')} (baton --help)`);
    return EXIT.usage;
  }
  let command: Command;
  try {
    command = await verb.load();
  } catch (err) {
    const missing = /Cannot find (?:package|module) '([^']+)'/.exec((err as Error).message)?.[1];
    if (!missing) throw err;
    console.error(`baton ${name}: this install lacks the package "${missing}" (an optional dependency); install it: npm install ${missing}`);
    return EXIT.failed;
  }
  if (wantsHelp(argv)) {
    console.log(command.help);
    return EXIT.ok;
  }
  try {
    return (await command.main(argv)) ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CliError) {
      console.error(`baton ${name}: ${err.message}`);
      if (err.usage) console.error(`${err.usage}   (baton ${name} --help)`);
      return err.exitCode;
    }
    console.error(`baton ${name}: ${describe(err)}`);
    if (process.env.BATON_DEBUG) console.error(err);
    return EXIT.failed;
  }
}

/** An unexpected error: its message (a list of problems keeps its lines), never a stack (BATON_DEBUG=1 adds it). */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  const message = (e.message ?? String(err)).trim();
  return e.code && !message.includes(e.code) ? `${message} (${e.code})` : message;
}

process.exitCode = await main();
