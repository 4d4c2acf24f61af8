/** Records the names of the prepared statements a Drizzle handle's pool sends (claims, reads, commits, …). */
import type pg from 'pg';
import type { Db } from '../../runtime/db/connect.ts';

export function statementsSent(db: Db): { names: string[]; stop: () => void } {
  const pool = (db as unknown as { $client: pg.Pool }).$client;
  const names: string[] = [];
  const original = pool.query;
  pool.query = function (this: pg.Pool, ...args: unknown[]) {
    const name = (args[0] as { name?: string } | undefined)?.name;
    if (name) names.push(name);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof pool.query;
  return { names, stop: () => void (pool.query = original) };
}
