/**
 * A run's row is written once or twice per step (claim and commit, or both at once). Those updates must be HOT
 * (heap-only: no new entry in any index of `runs`), or every step writes and later
 * vacuums an entry in each of the table's indexes: no index of `runs` may cover a
 * column the step protocol changes on every step.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, query } from '../../runtime/db/connect.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const RUNS = 5;
const STEPS = 20;

test('the claim and commit of a step update the run row in place (HOT), without touching its indexes', { timeout: 120_000 }, async () => {
  const t = await startTestPlatform({ tools: false, llm: 'offline' });
  try {
    const ids = await Promise.all(Array.from({ length: RUNS }, () => trigger(t.api, 'chain', { steps: STEPS })));
    for (const id of ids) assert.equal((await waitForRun(t.p, id, undefined, 60_000)).run.status, 'succeeded');
    // A backend reports its statistics when it ends: end every connection that wrote, then read them.
    await t.worker?.stop(2000);
    const reader = await openDatabase({ url: t.db.url, poolSize: 1 });
    try {
      // pg_terminate_backend with a timeout returns once each backend has exited (and so reported);
      // the statistics are then read until they hold every run's updates (a loaded machine reports
      // late), and a read that a pooler sent to a just-ended server connection is tried again.
      await query(reader.db, sql`select pg_terminate_backend(pid, 10000) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'`);
      const deadline = Date.now() + 10_000;
      const readStats = () =>
        query<{ upd: number; hot: number }>(reader.db, sql`select n_tup_upd::int as upd, n_tup_hot_upd::int as hot from pg_stat_user_tables where relname = 'runs'`)
          .then((rows) => rows[0])
          .catch((err: Error) => {
            if (Date.now() > deadline) throw err;
            return { upd: -1, hot: 0 };
          });
      let stats = await readStats();
      while (stats.upd < RUNS * STEPS && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        stats = await readStats();
      }
      assert.ok(stats.upd >= RUNS * STEPS, `the runs were updated (${stats.upd} updates)`);
      // The first claim (queued → running) and the last commit (→ succeeded) change the status,
      // which the live-runs index filters on; every other update must be HOT.
      assert.ok(stats.hot >= stats.upd * 0.8, `${stats.hot} of ${stats.upd} updates of runs were HOT`);
    } finally {
      await reader.close();
    }
  } finally {
    await t.close();
  }
});
