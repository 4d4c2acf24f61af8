/**
 * Races between statements, staged with real connections instead of sleeps: a
 * connection of its own holds a transaction open (`begin`, a store function, then
 * `commit` when the test says so), another statement queues on its row lock, and
 * `blockedOnLock` is the barrier that says the second one is really waiting.
 */
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from '../../schema/tables.ts';
import { type Db, query } from '../../runtime/db/connect.ts';
import { waitFor } from './platform.ts';

export interface Connection {
  /** Store functions take this like any Db; their statements run on this one connection. */
  db: Db;
  begin(): Promise<void>;
  commit(): Promise<void>;
  close(): Promise<void>;
}

export async function openConnection(url: string): Promise<Connection> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    db: drizzle({ client, schema }) as unknown as Db,
    begin: async () => void (await client.query('begin')),
    commit: async () => void (await client.query('commit')),
    close: () => client.end(),
  };
}

/** Resolves once `n` statements of this database wait for a lock (the barrier of a staged race). */
export async function blockedOnLock(db: Db, n = 1): Promise<void> {
  await waitFor(async () => {
    const [row] = await query<{ n: number }>(
      db,
      sql`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return (row?.n ?? 0) >= n;
  }, `${n} statement(s) to wait on a lock`);
}
