/**
 * Opens the database: PostgreSQL through node-postgres (directly or through
 * PgBouncer in transaction mode), or embedded PGlite on disk. Both give the same
 * Drizzle handle, so store code is written once.
 *
 * Pooler-safe by construction: no SET, no LISTEN, no session advisory locks and no
 * startup parameters; every statement stands alone or runs in one transaction.
 */
import fs from 'node:fs';
import { Placeholder, type SQL, is, sql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { type PgDatabase, PgDialect, type PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { drizzle as DrizzlePglite } from 'drizzle-orm/pglite';
import type { PGlite as PGliteClass } from '@electric-sql/pglite';
import pg from 'pg';
import * as schema from '../../schema/tables.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /**
   * The lease heartbeats' own connection: a worker with a thousand steps in flight queues
   * their claims and commits on `db`'s pool, and a heartbeat waiting behind them would let
   * live leases lapse (other workers would then take the steps over). Same as `db` in PGlite.
   */
  leases: Db;
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
      // One of the process's connections is the heartbeats' own (below): the pool size is the total.
      max: Math.max(1, (opts.poolSize ?? 10) - 1),
      // Fail fast while the server is down so callers can answer 503 instead of hanging.
      connectionTimeoutMillis: 3000,
      idleTimeoutMillis: 10_000,
      // Client-side (a server-side statement_timeout is a startup parameter PgBouncer rejects).
      query_timeout: 30_000,
    });
    // An idle client losing its connection (server restart) must not crash the process.
    pool.on('error', (err) => opts.onError?.(err));
    const db = drizzlePg({ client: pool, schema }) as unknown as Db;
    pools.set(db, { pool, prepared: true });
    // Connects on first use: only processes that run steps open it.
    const leasePool = new pg.Pool({ connectionString: opts.url, max: 1, connectionTimeoutMillis: 3000, idleTimeoutMillis: 10_000, query_timeout: 30_000 });
    leasePool.on('error', (err) => opts.onError?.(err));
    const leases = drizzlePg({ client: leasePool, schema }) as unknown as Db;
    pools.set(leases, { pool: leasePool, prepared: true });
    return {
      db,
      leases,
      driver: 'postgres',
      where: redactUrl(opts.url),
      close: async () => {
        await Promise.all([pool.end(), leasePool.end()]);
      },
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
  const pgliteDb = drizzlePglite({ client, schema }) as unknown as Db;
  return {
    db: pgliteDb,
    leases: pgliteDb,
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

/**
 * The hot statements of the step protocol (claim, commit, heartbeat, run insert) run
 * as named, prepared statements: PostgreSQL parses and plans a large CTE once per
 * connection instead of on every call, which halves its CPU per step.
 *
 * A pooler in transaction mode may not carry prepared statements (PgBouncer before
 * 1.21, or with `max_prepared_statements = 0`): the statement was prepared on one
 * server connection and the next call lands on another. PostgreSQL then refuses it
 * at Parse or Bind, before anything executed, so the call is simply sent again
 * unprepared, and this pool sends every later statement unprepared too.
 */
const pools = new WeakMap<Db, { pool: pg.Pool; prepared: boolean }>();
const dialect = new PgDialect();
/** Raised before execution when a pooler does not carry prepared statements across server connections. */
const NOT_PREPARED = new Set(['26000', '42P05']);
/** As Drizzle reads them (timestamps stay strings), so a prepared statement answers exactly like `query`. */
const keepAsText = new Set([pg.types.builtins.TIMESTAMPTZ, pg.types.builtins.TIMESTAMP, pg.types.builtins.DATE, pg.types.builtins.INTERVAL, 1115, 1182, 1185, 1187, 1231]);
const rowTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    keepAsText.has(oid) ? (value: string) => value : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * `query`, as a prepared statement named `name` where the connection allows it (see
 * above). One name, one SQL text: a statement whose text varies needs a name per variant.
 */
export async function queryPrepared<T>(db: Db, name: string, statement: SQL): Promise<T[]> {
  const target = pools.get(db);
  if (!target?.prepared) return query<T>(db, statement);
  const q = dialect.sqlToQuery(statement);
  return sendPrepared<T>(db, target, name, q.sql, q.params as unknown[], () => statement);
}

async function sendPrepared<T>(db: Db, target: { pool: pg.Pool; prepared: boolean }, name: string, text: string, values: unknown[], unprepared: () => SQL): Promise<T[]> {
  try {
    const result = await target.pool.query<T & pg.QueryResultRow>({ name, text, values, types: rowTypes });
    return result.rows;
  } catch (err) {
    if (!NOT_PREPARED.has((err as { code?: string }).code ?? '')) throw err;
    target.prepared = false;
    return query<T>(db, unprepared());
  }
}

/**
 * A prepared statement whose text is built once: `build` is called with placeholders
 * (`sql.placeholder`) the first time, and each call only fills in its values, instead of
 * building and walking the statement's SQL tree again (about 60 µs of the worker's CPU
 * per step for the chain commit). `build` must only interpolate its values, never branch
 * on them: a statement whose text varies is one hotStatement per variant. Where statements
 * are not prepared (PGlite, a pooler without them), it runs as `query` with the values.
 */
export function hotStatement<V extends Record<string, unknown>>(name: string, build: (v: V) => SQL) {
  let built: { text: string; slots: Array<string | null>; params: unknown[] } | undefined;
  const placeholders = new Proxy({}, { get: (_, key) => sql.placeholder(String(key)) }) as V;
  return <T>(db: Db, values: V): Promise<T[]> => {
    const target = pools.get(db);
    if (!target?.prepared) return query<T>(db, build(values));
    if (!built) {
      const q = dialect.sqlToQuery(build(placeholders));
      built = { text: q.sql, params: q.params, slots: q.params.map((p) => (is(p, Placeholder) ? p.name : null)) };
    }
    const b = built;
    const params = b.slots.map((slot, i) => (slot === null ? b.params[i] : values[slot]));
    return sendPrepared<T>(db, target, name, b.text, params, () => build(values));
  };
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
