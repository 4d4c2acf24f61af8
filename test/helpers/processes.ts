/**
 * Real Baton processes for chaos and shutdown tests: `baton worker` / `baton api`
 * as children of the test, pointed at the test's database, Redis prefix, tools and
 * LLM stub through the environment. Their stderr (JSON logs, fault announcements,
 * banners) is kept line by line. Tests signal only these children, by pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { SERVER_URL } from './db.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface BatonProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** stderr, line by line, as it arrives. */
  lines: string[];
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
  /** Resolves with the first line (seen or to come) that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  signal(sig: NodeJS.Signals): void;
}

/** The parent's environment without anything that would point a child elsewhere. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(BATON_|DATABASE_URL|REDIS_URL|OPENAI_|PORT$|HOST$|NODE_TEST)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** `root`: another copy of Baton to run (a production install, say); default this checkout. */
export function spawnBaton(verb: 'worker' | 'api', env: Record<string, string>, name: string = verb, root = ROOT): BatonProcess {
  const child = spawn(process.execPath, [path.join(root, 'scripts/baton.ts'), verb], {
    cwd: root,
    // BATON_METRICS_PORT 0: each process serves its metrics on a free port, never a shared one.
    env: { ...baseEnv(), HOST: '127.0.0.1', PORT: '0', BATON_METRICS_PORT: '0', BATON_WORKER_NAME: name, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let partial = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters) {
        if (!w.pattern.test(line)) continue;
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    });
  });
  return {
    name,
    pid: child.pid as number,
    child,
    lines,
    exited,
    get alive() {
      return alive;
    },
    waitForLine(pattern, timeoutMs = 20_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          pattern,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${name}: no line matching ${pattern} in ${timeoutMs} ms; last lines:\n${lines.slice(-10).join('\n')}`));
        }, timeoutMs);
        waiters.add(w);
        void exited.then(() => {
          if (!waiters.has(w)) return;
          waiters.delete(w);
          clearTimeout(timer);
          reject(new Error(`${name} exited before printing ${pattern}; last lines:\n${lines.slice(-10).join('\n')}`));
        });
      });
    },
    signal(sig) {
      if (alive) process.kill(child.pid as number, sig);
    },
  };
}

/** Starts a worker and resolves once it reads its streams. */
export async function startWorkerProcess(env: Record<string, string>, name: string): Promise<BatonProcess> {
  const w = spawnBaton('worker', env, name);
  await w.waitForLine(/^baton worker /, 30_000);
  return w;
}

/** Starts the API and resolves with its URL. */
export async function startApiProcess(env: Record<string, string>): Promise<BatonProcess & { url: string }> {
  const api = spawnBaton('api', env, 'api');
  const line = await api.waitForLine(/baton api listening on /, 30_000);
  return Object.assign(api, { url: /listening on (\S+)/.exec(line)?.[1] as string });
}

/** SIGKILLs (or signals) every child still alive and waits for them. */
export async function stopAll(children: Iterable<BatonProcess>, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const list = [...children];
  for (const c of list) {
    if (c.alive && sig === 'SIGKILL') c.signal('SIGCONT'); // a stopped process must be able to die
    c.signal(sig);
  }
  await Promise.all(list.map((c) => c.exited));
}

/**
 * Chaos scenarios run one at a time, even when test files run in parallel: each
 * spawns several processes and uses short leases, and on a small machine two at
 * once would starve each other's heartbeats. Other test files are not affected.
 */
export async function exclusive(): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  await client.query('select pg_advisory_lock(7340913)');
  return async () => {
    await client.query('select pg_advisory_unlock(7340913)').catch(() => {});
    await client.end().catch(() => {});
  };
}

/**
 * Runs this test file's scenarios alone (see `exclusive`). The lock is taken in a
 * file-level before hook, so the wait for another file's scenario does not count
 * against a test's timeout (a test that timed out while queued would go on in the
 * background, spawning processes its teardown had already passed), and released
 * after every test's own teardown.
 */
export function runAlone(): void {
  let release: (() => Promise<void>) | undefined;
  before(async () => {
    release = await exclusive();
  });
  after(async () => {
    await release?.();
  });
}

/**
 * Cleanups that run last-registered-first, as one after-hook (node:test runs hooks
 * first-registered-first): processes stop before the platform they use is closed,
 * and the platform before the chaos lock is released.
 */
export function teardown(tc: { after(fn: () => Promise<void>): void }): (fn: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  tc.after(async () => {
    for (const fn of fns.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error('cleanup failed:', err);
      }
    }
  });
  return (fn) => {
    fns.push(fn);
  };
}
