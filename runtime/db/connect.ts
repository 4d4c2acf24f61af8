/**
 * Opens the database: PostgreSQL through node-postgres (directly or through
 * PgBouncer in transaction mode), or embedded PGlite on disk. Both give the same
 * Drizzle handle, so store code is written once.
 *
 * Pooler-safe by construction: no SET, no LISTEN, no session advisory locks and no
 * startup parameters; every statement stands alone or runs in one transaction.
 */
import fs from 'node:fs';
import type { SQL } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { drizzle as DrizzlePglite } from 'drizzle-orm/pglite';
import type { PGlite as PGliteClass } from '@electric-sql/pglite';
import pg from 'pg';
import * as schema from '../../schema/tables.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  driver: 'postgres' | 'pglite';
  /** Where it lives, without credentials (for logs). */
  where: string;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres://… ; when absent, PGlite under `dataDir`. */
  url?: string;
  dataDir?: string;
  poolSize?: number;
  onError?: (err: Error) => void;
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  if (opts.url) {
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      // Fail fast while the server is down so callers can answer 503 instead of hanging.
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 10_000,
      // Client-side (a server-side statement_timeout is a startup parameter PgBouncer rejects).
      query_timeout: 30_000,
    });
    // An idle client losing its connection (server restart) must not crash the process.
    pool.on('error', (err) => opts.onError?.(err));
    return {
      db: drizzlePg({ client: pool, schema }) as unknown as Db,
      driver: 'postgres',
      where: redactUrl(opts.url),
      close: () => pool.end(),
    };
  }
  if (!opts.dataDir) throw new Error('openDatabase: give a DATABASE_URL or a data directory for PGlite');
  // Loaded only here: the embedded database is an optional dependency that production
  // images leave out (the api and worker roles always have DATABASE_URL).
  let PGlite: typeof PGliteClass;
  let drizzlePglite: typeof DrizzlePglite;
  try {
    ({ PGlite } = await import('@electric-sql/pglite'));
    ({ drizzle: drizzlePglite } = await import('drizzle-orm/pglite'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error('the embedded database needs the optional package @electric-sql/pglite (npm install @electric-sql/pglite), or set DATABASE_URL', {
      cause: err,
    });
  }
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const client = await PGlite.create(opts.dataDir);
  return {
    db: drizzlePglite({ client, schema }) as unknown as Db,
    driver: 'pglite',
    where: `${opts.dataDir} (embedded PGlite)`,
    close: () => client.close(),
  };
}

/** Runs raw SQL and returns its rows (both drivers answer `{ rows }`). */
export async function query<T>(db: Db, statement: SQL): Promise<T[]> {
  const result = (await db.execute(statement)) as unknown as { rows: T[] };
  return result.rows;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}
