/**
 * The code revision a run is pinned to (README: table `runs`, column `revision`).
 * The first claim records it; in Knative mode the dispatcher sends every later
 * step of the run to that revision. One primary-key lookup, no lock.
 */
import { sql } from 'drizzle-orm';
import { type Db, query } from '../db/connect.ts';

/** The run's revision: a string once its first step was claimed, null before; undefined when there is no such run. */
export async function runRevision(db: Db, runId: string): Promise<string | null | undefined> {
  const [row] = await query<{ revision: string | null }>(db, sql`select revision from runs where id = ${runId}`);
  return row ? row.revision : undefined;
}
