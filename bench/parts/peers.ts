/**
 * Part 4, the peers, same workload, same run: Baton (API + one worker process, default
 * settings) beside Restate, DBOS Transact, BullMQ, pg-boss and LangGraph JS, each
 * running 10-step no-op chains: per-step time of one run alone (median of 10 per
 * round) and steps/s for 500 runs submitted at once. Rounds alternate the systems
 * (the order rotates), so machine drift hits all alike; each figure is the median
 * over rounds (≥ 3). Each peer runs in its own process (bench/peers/<peer>.ts) with an
 * empty database of its own on the same PostgreSQL and a key prefix of its own on the
 * same Redis. The peers are installed here, into bench/peers/node_modules, from their
 * own lock file: never by `npm install` or CI.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { SERVER_URL } from '../../test/helpers/db.ts';
import { REDIS_URL, dropPrefix } from '../../test/helpers/redis.ts';
import type { Part, PartContext } from '../lib/part.ts';
import { type Figure, progress } from '../lib/report.ts';
import { startStack } from '../lib/stack.ts';
import { median } from '../lib/stats.ts';
import { singleRuns } from './overhead.ts';
import { burst } from './throughput.ts';

const PEERS_DIR = path.resolve(import.meta.dirname, '../peers');
const STEPS = 10;
const CONCURRENCY = 32; // Baton's default BATON_CONCURRENCY when the suite was written, given to every peer that has such a knob

const PEERS = [
  { name: 'restate', label: 'Restate', pkg: '@restatedev/restate-server' },
  { name: 'dbos', label: 'DBOS Transact', pkg: '@dbos-inc/dbos-sdk' },
  { name: 'bullmq', label: 'BullMQ', pkg: 'bullmq' },
  { name: 'pgboss', label: 'pg-boss', pkg: 'pg-boss' },
  { name: 'langgraph', label: 'LangGraph JS', pkg: '@langchain/langgraph' },
] as const;

interface Sample {
  perStepMs: number;
  stepsPerSec: number;
}

/** Installs the peers from their lock file when node_modules is missing or older than it. */
export function installPeers(): void {
  const lock = path.join(PEERS_DIR, 'package-lock.json');
  const installed = path.join(PEERS_DIR, 'node_modules/.package-lock.json');
  if (fs.existsSync(installed) && fs.statSync(installed).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  progress('peers: installing bench/peers (npm ci, from its own lock file)');
  // No install scripts: every peer runs without them (the Restate server binary is in its package).
  const r = spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: PEERS_DIR, stdio: 'inherit', timeout: 600_000 });
  if (r.status !== 0) throw new Error('npm ci in bench/peers failed');
}

function version(pkg: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(PEERS_DIR, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: SERVER_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** One peer, one round: a fresh empty database and Redis prefix, its harness in a process of its own. */
async function runPeer(name: string, ctx: PartContext): Promise<Sample> {
  const db = `bench_peer_${name}_${crypto.randomBytes(4).toString('hex')}`;
  const prefix = `bench-peer-${name}-${crypto.randomBytes(4).toString('hex')}:`;
  await admin((c) => c.query(`create database "${db}"`));
  const url = new URL(SERVER_URL);
  url.pathname = `/${db}`;
  try {
    const child = spawn(process.execPath, [path.join(PEERS_DIR, `${name}.ts`)], {
      cwd: PEERS_DIR,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        BENCH_DATABASE_URL: url.toString(),
        BENCH_REDIS_URL: REDIS_URL,
        BENCH_REDIS_PREFIX: prefix,
        BENCH_STEPS: String(STEPS),
        BENCH_CONCURRENCY: String(CONCURRENCY),
        BENCH_SINGLE: String(ctx.quick ? 2 : 10),
        BENCH_RUNS: String(ctx.quick ? 20 : 500),
        RESTATE_LOGGING: 'WARN',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    if (code !== 0 || !line) throw new Error(`${name} harness exited ${code}:\n${err.slice(-1500)}`);
    const r = JSON.parse(line.slice(7)) as { perStepMs: number[]; stepsPerSec: number };
    return { perStepMs: median(r.perStepMs), stepsPerSec: r.stepsPerSec };
  } finally {
    await admin((c) => c.query(`drop database if exists "${db}" with (force)`)).catch(() => {});
    await dropPrefix(prefix).catch(() => {});
  }
}

async function runBaton(ctx: PartContext): Promise<Sample> {
  const stack = await startStack({ workers: 1 });
  try {
    await singleRuns(stack, 3);
    await burst(stack, 20);
    const single = await singleRuns(stack, ctx.quick ? 2 : 10);
    const b = await burst(stack, ctx.quick ? 20 : 500);
    return { perStepMs: median(single.perStepMs), stepsPerSec: b.stepsPerSec };
  } finally {
    await stack.close();
  }
}

export const peersPart: Part = {
  name: 'peers',
  about: 'Baton beside Restate, DBOS, BullMQ, pg-boss and LangGraph: per-step time alone and steps/s, same run, alternated rounds',
  async run(ctx) {
    installPeers();
    const systems = ['baton', ...PEERS.map((p) => p.name)];
    const samples = new Map<string, Sample[]>(systems.map((s) => [s, []]));
    const failures = new Map<string, string>();
    for (let round = 0; round < ctx.rounds; round++) {
      const order = [...systems.slice(round % systems.length), ...systems.slice(0, round % systems.length)];
      for (const system of order) {
        if (failures.has(system)) continue;
        progress(`peers: round ${round + 1}/${ctx.rounds}: ${system}`);
        try {
          samples.get(system)?.push(system === 'baton' ? await runBaton(ctx) : await runPeer(system, ctx));
        } catch (err) {
          if (system === 'baton') throw err;
          failures.set(system, (err as Error).message);
          progress(`peers: ${system} failed: ${(err as Error).message}`);
        }
      }
    }
    const med = (s: string, f: (x: Sample) => number) => median((samples.get(s) ?? []).map(f));
    const list = (s: string, f: (x: Sample) => number, digits: number) => (samples.get(s) ?? []).map((x) => f(x).toFixed(digits)).join(', ');
    const baton = { ms: med('baton', (x) => x.perStepMs), rate: med('baton', (x) => x.stepsPerSec) };
    const figures: Figure[] = [
      { part: 'peers', label: 'Baton (API + 1 worker process): per step, one run alone', value: baton.ms, unit: 'ms', vsFloor: 'time', note: `rounds: ${list('baton', (x) => x.perStepMs, 2)}` },
      { part: 'peers', label: `Baton: ${ctx.quick ? 20 : 500} runs × ${STEPS} steps at once`, value: baton.rate, unit: 'steps/s', vsFloor: 'rate', note: `rounds: ${list('baton', (x) => x.stepsPerSec, 0)}` },
    ];
    for (const p of PEERS) {
      const label = `${p.label} ${version(p.pkg)}`;
      if (failures.has(p.name)) {
        figures.push({ part: 'peers', label: `${label}: did not run`, value: Number.NaN, unit: 'ms', note: failures.get(p.name)?.split('\n')[0].slice(0, 160) });
        continue;
      }
      const ms = med(p.name, (x) => x.perStepMs);
      const rate = med(p.name, (x) => x.stepsPerSec);
      figures.push(
        { part: 'peers', label: `${label}: per step, one run alone`, value: ms, unit: 'ms', vsFloor: 'time', note: `Baton takes ${(baton.ms / ms).toFixed(2)}× its time; rounds: ${list(p.name, (x) => x.perStepMs, 2)}` },
        { part: 'peers', label: `${label}: ${ctx.quick ? 20 : 500} runs × ${STEPS} steps at once`, value: rate, unit: 'steps/s', vsFloor: 'rate', note: `Baton runs ${(baton.rate / rate).toFixed(2)}× its rate; rounds: ${list(p.name, (x) => x.stepsPerSec, 0)}` },
      );
    }
    return figures;
  },
};
