/**
 * Part 7, long conversations: one `conversation` run of 200 steps whose state grows by
 * 2 KB per step (a message appended, random text). Bytes written to PostgreSQL per step:
 * the growth of every table a step writes (runs, steps, step_attempts, checkpoints: heap,
 * TOAST and indexes), set against the 2 KB delta, with the WAL beside it: this database's own
 * statements' (pg_stat_statements) where the server preloads it, else the server's whole WAL
 * position (all databases; the bench is alone on a quiet server). Table growth counts each row version once
 * where it lands: a dead version left by an update counts (it was written), space that
 * HOT pruning reused within a page does not (the runs row's updates mostly).
 * State-load time, two ways. In the run's own path a step is claimed by the commit before it
 * and its state is the worker's copy with the last patch applied: nothing is read, so the
 * step's claim → commit time (its step row) at steps 10, 100 and 200 is the cost as the run
 * sees it. A cold claim (after a crash, a wait or a queue hop) loads from PostgreSQL: the
 * engine's own claim + load (`claimStep`, one statement) timed at the 1st, 10th, 100th and
 * 200th step of the finished run, each re-opened for the probe; the state grows with N, so
 * "flat" there is the time per KB of state above the 1st step's.
 * BATON_SNAPSHOT_EVERY in the bench's environment is passed on (to compare a count rule).
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { startStack, submitRuns, waitForRuns } from '../lib/stack.ts';
import { median, nowMs } from '../lib/stats.ts';

const BYTES = 2048;
const TABLES = ['runs', 'steps', 'step_attempts', 'checkpoints'] as const;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(bytes < 10_240 ? 1 : 0)} KB`;

export const longPart: Part = {
  name: 'long',
  about: 'one run of 200 steps whose state grows 2 KB per step: bytes written per step, state-load time at step 200 vs early',
  async run(ctx) {
    const steps = ctx.quick ? 20 : 200;
    const every = process.env.BATON_SNAPSHOT_EVERY;
    const stack = await startStack({
      workers: 1,
      env: { BATON_FUNCTIONS_DIR: path.resolve(import.meta.dirname, '../functions'), ...(every ? { BATON_SNAPSHOT_EVERY: every } : {}) },
    });
    try {
      // pg_stat_statements's view needs the extension in this database, and the server must preload it.
      const [{ preloaded }] = await query<{ preloaded: boolean }>(
        stack.db,
        sql`select 'pg_stat_statements' = any(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) as preloaded`,
      );
      if (preloaded) await query(stack.db, sql`create extension if not exists pg_stat_statements`);
      const walSource = preloaded ? 'its statements' : 'the server';
      const sizes = async () => {
        const rows = await query<{ name: string; heap: number; toast: number; indexes: number }>(
          stack.db,
          sql`select c.relname as name, pg_relation_size(c.oid)::float8 as heap,
                coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::float8 as toast, pg_indexes_size(c.oid)::float8 as indexes
              from pg_class c where c.relname in (${sql.join(TABLES.map((t) => sql`${t}`), sql`, `)}) and c.relkind = 'r'`,
        );
        const [wal] = await query<{ bytes: number }>(
          stack.db,
          preloaded
            ? sql`select coalesce(sum(wal_bytes), 0)::float8 as bytes
                  from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`
            : sql`select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 as bytes`,
        );
        return { tables: new Map(rows.map((r) => [r.name, r])), wal };
      };
      const before = await sizes();
      const [id] = await submitRuns(stack.api?.url as string, 'conversation', { steps, bytes: BYTES }, 1);
      await waitForRuns(stack.db, [id], 300_000, 50);
      const after = await sizes();
      const grown = TABLES.map((name) => {
        const [a, b] = [after.tables.get(name), before.tables.get(name)];
        const part = (k: 'heap' | 'toast' | 'indexes') => ((a?.[k] ?? 0) - (b?.[k] ?? 0)) / steps;
        return { name, heap: part('heap'), toast: part('toast'), indexes: part('indexes') };
      });
      const perStep = grown.reduce((sum, g) => sum + g.heap + g.toast + g.indexes, 0);
      const walPerStep = (after.wal.bytes - before.wal.bytes) / steps;
      const [stored] = await query<{ patches: number; snapshots: number; n: number }>(
        stack.db,
        sql`select (select sum(pg_column_size(patch))::float8 from steps where run_id = ${id}) as patches,
                   (select sum(pg_column_size(state))::float8 from checkpoints where run_id = ${id}) as snapshots,
                   (select count(*)::int from checkpoints where run_id = ${id}) as n`,
      );

      // In the run's own path: each step's claim → commit, from its row.
      const [path] = await query<{ at10: number; at100: number; at200: number }>(
        stack.db,
        sql`select percentile_cont(0.5) within group (order by ms) filter (where seq between 0 and 19)::float8 as at10,
                   percentile_cont(0.5) within group (order by ms) filter (where seq between ${steps / 2 - 10} and ${steps / 2 + 9})::float8 as at100,
                   percentile_cont(0.5) within group (order by ms) filter (where seq >= ${steps - 20})::float8 as at200
            from (select seq, extract(epoch from finished_at - started_at) * 1000 as ms from steps where run_id = ${id}) s`,
      );

      // A cold claim: the engine's claim + load, probed at a few points of the finished run.
      const loadAt = async (seq: number) => {
        const times: number[] = [];
        let stateBytes = 0;
        const [replayed] = await query<{ rows: number }>(
          stack.db,
          sql`select count(*)::int as rows from steps
              where run_id = ${id} and seq < ${seq} and seq > coalesce((select max(seq) from checkpoints where run_id = ${id} and seq < ${seq}), -1)`,
        );
        for (let i = 0; i < (ctx.quick ? 3 : 21); i++) {
          await query(stack.db, sql`update runs set status = 'running', next_seq = ${seq}, next_step = 'turn', finished_at = null, lease_owner = null, lease_expires_at = null, wake_at = null where id = ${id}`);
          const t0 = nowMs();
          const claimed = await claimStep(stack.db, { runId: id, function: 'conversation', seq, leaseOwner: `bench-${i}`, worker: 'bench', leaseMs: 60_000 });
          times.push(nowMs() - t0);
          if (!claimed) throw new Error(`the probe could not claim step ${seq}`);
          stateBytes = JSON.stringify(claimed.state).length;
        }
        return { ms: median(times), stateBytes, rows: replayed.rows };
      };
      await loadAt(0); // warms the statement's plan
      const first = await loadAt(0);
      const early = await loadAt(Math.min(9, steps - 1));
      const middle = await loadAt(Math.floor(steps / 2) - 1);
      const late = await loadAt(steps - 1);
      // The claim's own cost is the 1st step's (empty state); what the state adds, per KB.
      const perKb = (l: typeof late) => `${(((l.ms - first.ms) * 1000) / (l.stateBytes / 1024)).toFixed(1)} µs/KB`;
      const tables = grown.map((g) => `${g.name} ${kb(g.heap + g.toast + g.indexes)}`).join(', ');
      const figures: Figure[] = [
        {
          part: 'long',
          label: `${steps} steps, +${BYTES / 1024} KB of state each: bytes written per step (table growth)`,
          value: perStep,
          unit: 'B',
          note:
            `${(perStep / BYTES).toFixed(1)}× the delta; patches ${Math.round(stored.patches / 1024)} KB + ${stored.n} snapshots ${Math.round(stored.snapshots / 1024)} KB` +
            `${every ? ` (BATON_SNAPSHOT_EVERY=${every})` : ''}; per step: ${tables}; WAL of ${walSource} ${kb(walPerStep)}/step`,
        },
        {
          part: 'long',
          label: `in the run's path (claimed by the commit before, nothing read): claim → commit at step ${steps}`,
          value: path.at200,
          unit: 'ms',
          vsFloor: 'time',
          note: `${(path.at200 / path.at10).toFixed(1)}× step 10 (${path.at10.toFixed(2)} ms); step ${steps / 2}: ${path.at100.toFixed(2)} ms; medians of 20 steps around each`,
        },
        { part: 'long', label: `a cold claim + load at step 10 (state ${Math.round(early.stateBytes / 1024)} KB)`, value: early.ms, unit: 'ms', vsFloor: 'time', note: `step 1: ${first.ms.toFixed(2)} ms` },
        {
          part: 'long',
          label: `a cold claim + load at step ${steps} (state ${Math.round(late.stateBytes / 1024)} KB)`,
          value: late.ms,
          unit: 'ms',
          vsFloor: 'time',
          note:
            `${(late.ms / early.ms).toFixed(1)}× step 10; step ${Math.floor(steps / 2)}: ${middle.ms.toFixed(2)} ms; above step 1, per KB of state: ` +
            `${perKb(early)} (10), ${perKb(middle)} (${Math.floor(steps / 2)}), ${perKb(late)} (${steps}); patch rows replayed ${early.rows}/${middle.rows}/${late.rows}`,
        },
      ];
      return figures;
    } finally {
      await stack.close();
    }
  },
};
