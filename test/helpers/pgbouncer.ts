/**
 * A real PgBouncer in **transaction** mode, in front of the test PostgreSQL, as the
 * CNPG Pooler runs in the cluster. One per test process, started on first use on a
 * free loopback port with its own config directory, stopped at exit.
 *
 *   const url = await viaPgBouncer(directUrl);   // same database, through the bouncer
 *
 * Any test helper can route its databases through it: with BATON_TEST_PGBOUNCER=1,
 * `maybeViaPgBouncer(url)` returns the bounced URL (else `url` unchanged).
 * Needs Debian's `pgbouncer` package (`apt-get install -y pgbouncer`);
 * `pgBouncerBinary()` is null without it, and tests skip saying so.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

const CANDIDATES = [process.env.PGBOUNCER_BIN, '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

export function pgBouncerBinary(): string | null {
  return CANDIDATES.find((p): p is string => !!p && fs.existsSync(p)) ?? null;
}

export interface PgBouncer {
  port: number;
  /** Server connections per (database, user): small, so sharing is exercised. */
  poolSize: number;
  stop(): Promise<void>;
}


/** Starts PgBouncer in front of `upstream` (a postgres:// URL); resolves once it listens. */
export async function startPgBouncer(upstream: string, opts: { poolSize?: number } = {}): Promise<PgBouncer> {
  const bin = pgBouncerBinary();
  if (!bin) throw new Error('pgbouncer is not installed (apt-get install -y pgbouncer)');
  const u = new URL(upstream);
  const user = decodeURIComponent(u.username || 'postgres');
  const poolSize = opts.poolSize ?? 4;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-pgbouncer-'));
  fs.chmodSync(dir, 0o755);
  // trust: the test server trusts local connections; the user must still be listed in auth_file.
  fs.writeFileSync(path.join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${u.hostname} port=${u.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      // As CNPG's pooler: no startup parameters beyond the ones PgBouncer tracks itself.
      'ignore_startup_parameters =',
      'server_reset_query =',
      'admin_users =',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  // PgBouncer refuses to run as root; -u drops to an unprivileged user.
  const args = [...(process.getuid?.() === 0 ? ['-u', process.env.PGBOUNCER_USER ?? 'postgres'] : []), path.join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pgbouncer did not start within 10 s:\n${log}`)), 10_000);
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('listening on') || log.includes('process up')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pgbouncer exited with ${code}:\n${log}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  // A shared bouncer must not keep a finished test process alive; it is killed at exit.
  child.unref();
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  const kill = () => child.kill('SIGTERM');
  process.once('exit', kill);
  return {
    port,
    poolSize,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off('exit', kill);
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        // Unref'd while it served; held again so its exit is awaited before the loop may end.
        child.ref();
        child.kill('SIGTERM');
      }),
  };
}

let shared: Promise<PgBouncer> | undefined;

/** `url` with host and port replaced by this process's shared PgBouncer (started on first use). */
export async function viaPgBouncer(url: string): Promise<string> {
  shared ??= startPgBouncer(url);
  const b = await shared;
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(b.port);
  return u.toString();
}

/** The switch for whole suites: BATON_TEST_PGBOUNCER=1 routes `url` through PgBouncer. */
export function maybeViaPgBouncer(url: string): Promise<string> {
  return process.env.BATON_TEST_PGBOUNCER === '1' ? viaPgBouncer(url) : Promise.resolve(url);
}
