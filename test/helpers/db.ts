/**
 * A fresh PostgreSQL database per test: cloned from a migrated template (graphile's
 * trick; a clone is much faster than migrating), dropped afterwards. DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/postgres) names the server.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import pg from 'pg';
import { type Database, openDatabase } from '../../runtime/db/connect.ts';
import { MIGRATIONS_FOLDER, migrate } from '../../runtime/db/migrate.ts';
import { maybeViaPgBouncer } from './pgbouncer.ts';

export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function urlFor(db: string): string {
  const u = new URL(SERVER_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: urlFor('postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function templateName(): string {
  const journal = fs.readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, 'utf8');
  const sqlFiles = fs.readdirSync(MIGRATIONS_FOLDER).filter((f) => f.endsWith('.sql')).sort();
  const hash = crypto.createHash('sha256').update(journal);
  for (const f of sqlFiles) hash.update(fs.readFileSync(`${MIGRATIONS_FOLDER}/${f}`));
  return `baton_tpl_${hash.digest('hex').slice(0, 12)}`;
}

let template: Promise<string> | undefined;

/** Creates the migrated template once per server and migration set (parallel test files queue on a lock). */
function ensureTemplate(): Promise<string> {
  return (template ??= admin(async (c) => {
    const name = templateName();
    await c.query('select pg_advisory_lock(7340912)');
    try {
      const { rowCount } = await c.query('select 1 from pg_database where datname = $1', [name]);
      if (!rowCount) {
        await c.query(`create database "${name}_tmp"`).catch(async () => {
          await c.query(`drop database if exists "${name}_tmp" with (force)`);
          await c.query(`create database "${name}_tmp"`);
        });
        const db = await openDatabase({ url: urlFor(`${name}_tmp`) });
        try {
          await migrate(db.db);
        } finally {
          await db.close();
        }
        await c.query(`alter database "${name}_tmp" rename to "${name}"`);
      }
      // Tidy databases left by test processes that died more than an hour ago.
      const stale = await c.query(
        `select datname from pg_database where datname ~ '^baton_t_[0-9]+_' and split_part(datname, '_', 3)::bigint < $1`,
        [Math.floor(Date.now() / 1000) - 3600],
      );
      for (const row of stale.rows) await c.query(`drop database if exists "${row.datname}" with (force)`).catch(() => {});
      return name;
    } finally {
      await c.query('select pg_advisory_unlock(7340912)');
    }
  }));
}

export interface TestDatabase {
  name: string;
  url: string;
  database: Database;
  drop(): Promise<void>;
}

/** A migrated database of its own; `drop()` closes the pool and removes it. */
export async function createTestDatabase(opts: { open?: boolean } = {}): Promise<TestDatabase> {
  const tpl = await ensureTemplate();
  const name = `baton_t_${Math.floor(Date.now() / 1000)}_${crypto.randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database "${name}" template "${tpl}"`));
  // BATON_TEST_PGBOUNCER=1: the suite's connections go through PgBouncer in transaction mode.
  const url = await maybeViaPgBouncer(urlFor(name));
  const database = opts.open === false ? (null as unknown as Database) : await openDatabase({ url, poolSize: 4 });
  return {
    name,
    url,
    database,
    async drop() {
      if (database) await database.close().catch(() => {});
      await admin((c) => c.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

/** An empty database of its own (no migrations): what the tool servers' ledger gets. */
export async function createBareDatabase(prefix = 'baton_t'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${Math.floor(Date.now() / 1000)}_${crypto.randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`create database "${name}"`));
  return {
    name,
    url: urlFor(name),
    drop: () => admin((c) => c.query(`drop database if exists "${name}" with (force)`)).then(() => {}),
  };
}
