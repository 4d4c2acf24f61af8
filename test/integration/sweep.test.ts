/**
 * The sweeper looks for live runs whose wake-up Redis lost. A run that sleeps on
 * purpose (a wait with a timeout, a retry in backoff: `wake_at` in the future) is not
 * lost: its wake-up sits in the delayed set. The sweeper leaves such runs alone, so a
 * fleet of long waits neither gets re-touched and re-published every sweep nor
 * crowds a truly lost run out of the sweep's batch. Once a scheduled wake-up is
 * overdue by the stale threshold, it was lost too, and the sweeper takes the run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inArray, sql } from 'drizzle-orm';
import * as v from 'valibot';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { sweep } from '../../runtime/store/sweep.ts';
import { runs } from '../../schema/tables.ts';
import { startTestPlatform, trigger } from '../helpers/platform.ts';

const agent = defineAgent({
  name: 'napper',
  input: v.object({}),
  start: 'a',
  steps: { a: () => done('ok') },
});

test('the sweeper skips scheduled wake-ups and still finds every lost run in one sweep', async (tc) => {
  const t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline', worker: false });
  tc.after(() => t.close());
  const BATCH = 5;
  const ids = await Promise.all(Array.from({ length: 4 * BATCH + 3 }, () => trigger(t.api, 'napper', {})));
  const waits = ids.slice(0, 3 * BATCH); // waiting on a signal with a timeout an hour away
  const backoff = ids.slice(3 * BATCH, 4 * BATCH); // a retry scheduled an hour from now
  const [lost, overdue, parked] = ids.slice(4 * BATCH);
  // All idle for two hours, the sleepers longest (the sweeper takes the oldest first).
  await query(
    t.p.db,
    sql`update runs set status = 'waiting', wait_signal = 'approval', wake_at = now() + interval '1 hour',
          updated_at = now() - interval '3 hours' where id in ${waits}`,
  );
  await query(
    t.p.db,
    sql`update runs set status = 'running', wake_at = now() + interval '1 hour', updated_at = now() - interval '3 hours'
        where id in ${backoff}`,
  );
  // Truly lost: a queued run whose message vanished; a wait whose timeout fired an hour ago
  // (the delayed wake-up vanished); and a wait with no timeout, which only a signal ends.
  await query(t.p.db, sql`update runs set updated_at = now() - interval '2 hours' where id = ${lost}`);
  await query(
    t.p.db,
    sql`update runs set status = 'waiting', wait_signal = 'approval', wake_at = now() - interval '1 hour',
          updated_at = now() - interval '2 hours' where id = ${overdue}`,
  );
  await query(
    t.p.db,
    sql`update runs set status = 'waiting', wait_signal = 'approval', wake_at = null, updated_at = now() - interval '2 hours'
        where id = ${parked}`,
  );
  const before = await t.p.db.select({ id: runs.id, updatedAt: runs.updatedAt }).from(runs).where(inArray(runs.id, [...waits, ...backoff]));

  const swept = await sweep(t.p.db, { staleMs: 60_000, limit: BATCH });
  assert.deepEqual(
    swept?.map((r) => r.id).sort(),
    [lost, overdue].sort(),
    'one sweep finds the lost runs, and only them, however many sleepers come first',
  );
  for (const r of swept ?? []) assert.equal(r.delay_ms, 0, 'a lost run is due now');

  const after = await t.p.db.select({ id: runs.id, updatedAt: runs.updatedAt }).from(runs).where(inArray(runs.id, [...waits, ...backoff]));
  assert.deepEqual(
    after.map((r) => [r.id, r.updatedAt.getTime()]).sort(),
    before.map((r) => [r.id, r.updatedAt.getTime()]).sort(),
    'the sleepers were not touched',
  );
  // A second sweep right after finds nothing: the lost runs were touched (re-published once per stale period).
  assert.deepEqual(await sweep(t.p.db, { staleMs: 60_000, limit: BATCH }), []);
});
