/**
 * Counts behind the API's per-tenant quotas (runtime/api/quotas.ts). Live runs are
 * counted now and then, not per request: the count uses `runs_live_idx` (live runs
 * only), and Redis adds the runs admitted since.
 */
import { and, count, eq, inArray } from 'drizzle-orm';
import { LIVE_RUN_STATUS, runs } from '../../schema/tables.ts';
import type { Db } from '../db/connect.ts';

export async function countLiveRuns(db: Db, tenant: string): Promise<number> {
  const [row] = await db
    .select({ n: count() })
    .from(runs)
    .where(and(eq(runs.tenant, tenant), inArray(runs.status, [...LIVE_RUN_STATUS])));
  return row?.n ?? 0;
}
