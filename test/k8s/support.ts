/**
 * Real PostgreSQL and Redis for the Kubernetes integration tests: a database of the
 * test's own (created, migrated, dropped) and a Redis key prefix of its own.
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) and REDIS_URL
 * (default redis://127.0.0.1:6379) name the servers.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { openDatabase } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { maybeViaPgBouncer } from '../helpers/pgbouncer.ts';

export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function databaseUrl(name: string, base = SERVER_URL): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin(statement: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl('postgres') });
  await c.connect();
  try {
    await c.query(statement);
  } finally {
    await c.end();
  }
}

export interface ScratchDatabase {
  name: string;
  /** Direct URL. */
  url: string;
  /** What the runtime should use: through PgBouncer when BATON_TEST_PGBOUNCER=1, else `url`. */
  runtimeUrl: string;
  drop(): Promise<void>;
}

/** An empty database; `migrated` applies the migrations over `migrateUrl` (default: direct). */
export async function scratchDatabase(opts: { migrateUrl?: (url: string) => Promise<string> } = {}): Promise<ScratchDatabase & { migrated: string[] }> {
  const name = `baton_k8s_${crypto.randomBytes(5).toString('hex')}`;
  await admin(`create database "${name}"`);
  const url = databaseUrl(name);
  const db = await openDatabase({ url: opts.migrateUrl ? await opts.migrateUrl(url) : url, poolSize: 2 });
  let migrated: string[];
  try {
    migrated = (await migrate(db.db)).applied;
  } finally {
    await db.close();
  }
  return { name, url, runtimeUrl: await maybeViaPgBouncer(url), migrated, drop: () => admin(`drop database if exists "${name}" with (force)`) };
}

export function testPrefix(): string {
  return `baton-test:${crypto.randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under the prefix. */
export async function dropPrefix(prefix: string): Promise<void> {
  const r = await createClient({ url: REDIS_URL }).connect();
  try {
    for await (const keys of r.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (keys.length) await r.del(keys);
  } finally {
    r.destroy();
  }
}

/** Resolves when `check` is true: re-checked on every `wake()` and every `everyMs`; rejects after `timeoutMs`. */
export function until(check: () => Promise<boolean> | boolean, opts: { timeoutMs?: number; everyMs?: number; what?: string } = {}) {
  let wake: () => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        if (await check()) finish(resolve);
      } catch (err) {
        finish(() => reject(err));
      } finally {
        busy = false;
      }
    };
    const interval = setInterval(() => void tick(), opts.everyMs ?? 50);
    const timer = setTimeout(() => finish(() => reject(new Error(`timed out waiting for ${opts.what ?? 'a condition'}`))), opts.timeoutMs ?? 15_000);
    const finish = (f: () => void) => {
      clearInterval(interval);
      clearTimeout(timer);
      f();
    };
    wake = () => void tick();
    void tick();
  });
  return { done, wake: () => wake() };
}
