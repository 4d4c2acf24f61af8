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
import fs from 'node:fs';
import path from 'node:path';
import { CliError, type Command, EXIT } from './lib/cli.ts';
import { resolvePackageFilesFast } from './lib/package-scopes.ts';

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

/** Verbs that serve (and so send traces when OTEL_EXPORTER_OTLP_ENDPOINT is set), by service name. */
const TRACED: Record<string, string> = { dev: 'baton', api: 'baton-api', worker: 'baton-worker', tools: 'baton-tools' };

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

/** The package's version: its package.json is above this file (scripts/ in a checkout, dist/scripts/ when installed). */
function version(): string {
  for (let dir = import.meta.dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/** --help or -h among the options (not after `--`, where arguments are taken as they are). */
function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

async function main(): Promise<number> {
  // Before any command's imports (scripts/lib/package-scopes.ts).
  resolvePackageFilesFast();
  const [name, ...argv] = process.argv.slice(2);
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
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
    if (!missingPackage(err)) throw err;
    console.error(`baton ${name}: ${describe(err)}`);
    return EXIT.failed;
  }
  if (wantsHelp(argv)) {
    console.log(command.help);
    return EXIT.ok;
  }
  const tracing = TRACED[name] ? await import('../tools/lib/tracing.ts') : null;
  try {
    await tracing?.startTracing(TRACED[name]);
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
  } finally {
    // Spans still buffered go out before the process ends.
    await tracing?.stopTracing();
  }
}

/** A package this install does not have (production images leave the optional ones out). */
function missingPackage(err: unknown): string | null {
  const e = err as { code?: string; message?: string };
  if (e.code !== 'ERR_MODULE_NOT_FOUND') return null;
  const name = /Cannot find package '([^']+)'/.exec(e.message ?? '')?.[1];
  return name && !name.startsWith('.') && !name.startsWith('/') ? name : null;
}

/** An unexpected error: its message (a list of problems keeps its lines), never a stack (BATON_DEBUG=1 adds it). */
function describe(err: unknown): string {
  const missing = missingPackage(err);
  if (missing) return `this install lacks the package "${missing}" (an optional dependency, left out of production images): npm install ${missing}`;
  const e = err as { message?: string; code?: string };
  const message = (e.message ?? String(err)).trim();
  return e.code && !message.includes(e.code) ? `${message} (${e.code})` : message;
}

process.exitCode = await main();
