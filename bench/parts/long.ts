/**
 * Part 7, long conversations: one `conversation` run of 200 steps whose state grows by
 * 2 KB per step (a message appended, random text). Bytes written to PostgreSQL per step:
 * the growth of every table a step writes (runs, steps, step_attempts, checkpoints: heap,
 * TOAST and indexes), set against the 2 KB delta, with the WAL of this database's own
 * statements (pg_stat_statements) beside it. Table growth counts each row version once
 * where it lands: a dead version left by an update counts (it was written), space that
 * HOT pruning reused within a page does not (the runs row's updates mostly).
 * State-load time: the engine's own claim + load (`claimStep`, one statement) timed at
 * the 1st, 10th, 100th and 200th step of the finished run, each re-opened for the probe;
 * the state grows with N, so "flat" is the time per KB of state above the 1st step's.
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
      // pg_stat_statements is preloaded on the server; its view needs the extension in this database.
      await query(stack.db, sql`create extension if not exists pg_stat_statements`);
      const sizes = async () => {
        const rows = await query<{ name: string; heap: number; toast: number; indexes: number }>(
          stack.db,
          sql`select c.relname as name, pg_relation_size(c.oid)::float8 as heap,
                coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::float8 as toast, pg_indexes_size(c.oid)::float8 as indexes
              from pg_class c where c.relname in (${sql.join(TABLES.map((t) => sql`${t}`), sql`, `)}) and c.relkind = 'r'`,
        );
        const [wal] = await query<{ bytes: number; fpi: number }>(
          stack.db,
          sql`select coalesce(sum(wal_bytes), 0)::float8 as bytes, coalesce(sum(wal_fpi), 0)::float8 as fpi
              from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`,
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

      // The engine's claim + load, probed at a few points of the finished run.
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
            `${every ? ` (BATON_SNAPSHOT_EVERY=${every})` : ''}; per step: ${tables}; WAL of its statements ${kb(walPerStep)}/step`,
        },
        { part: 'long', label: `claim + load at step 10 (state ${Math.round(early.stateBytes / 1024)} KB)`, value: early.ms, unit: 'ms', vsFloor: 'time', note: `step 1: ${first.ms.toFixed(2)} ms` },
        {
          part: 'long',
          label: `claim + load at step ${steps} (state ${Math.round(late.stateBytes / 1024)} KB)`,
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
