/**
 * Part 7, long conversations: one `conversation` run of 200 steps whose state grows by
 * 2 KB per step (a message appended, random text). Bytes written to PostgreSQL per step:
 * the growth of the runs, steps and checkpoints tables (heap, TOAST and indexes; this
 * server does not preload pg_stat_statements, and its WAL counter is shared with
 * everyone else's work, so it is shown only as a note), set against the 2 KB delta.
 * State-load time: the engine's own claim + load (`claimStep`, one statement) timed
 * at the 10th, 100th and 200th step of the finished run, each re-opened for the probe.
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

export const longPart: Part = {
  name: 'long',
  about: 'one run of 200 steps whose state grows 2 KB per step: bytes written per step, state-load time at step 200 vs early',
  async run(ctx) {
    const steps = ctx.quick ? 20 : 200;
    const stack = await startStack({ workers: 1, env: { BATON_FUNCTIONS_DIR: path.resolve(import.meta.dirname, '../functions') } });
    try {
      const sizes = async () => {
        const [r] = await query<{ bytes: number; wal: string }>(
          stack.db,
          sql`select sum(pg_total_relation_size(c.oid))::float8 as bytes, pg_current_wal_lsn()::text as wal
              from pg_class c where c.relname in ('runs', 'steps', 'checkpoints') and c.relkind = 'r'`,
        );
        return r;
      };
      const before = await sizes();
      const [id] = await submitRuns(stack.api?.url as string, 'conversation', { steps, bytes: BYTES }, 1);
      await waitForRuns(stack.db, [id], 300_000, 50);
      const after = await sizes();
      const [wal] = await query<{ bytes: number }>(stack.db, sql`select pg_wal_lsn_diff(${after.wal}::pg_lsn, ${before.wal}::pg_lsn)::float8 as bytes`);
      const [stored] = await query<{ patches: number; snapshots: number; n: number }>(
        stack.db,
        sql`select (select sum(pg_column_size(patch))::float8 from steps where run_id = ${id}) as patches,
                   (select sum(pg_column_size(state))::float8 from checkpoints where run_id = ${id}) as snapshots,
                   (select count(*)::int from checkpoints where run_id = ${id}) as n`,
      );
      const perStep = (after.bytes - before.bytes) / steps;

      // The engine's claim + load, probed at a few points of the finished run.
      const loadAt = async (seq: number) => {
        const times: number[] = [];
        let stateBytes = 0;
        for (let i = 0; i < (ctx.quick ? 3 : 21); i++) {
          await query(stack.db, sql`update runs set status = 'running', next_seq = ${seq}, next_step = 'turn', finished_at = null, lease_owner = null, lease_expires_at = null, wake_at = null where id = ${id}`);
          const t0 = nowMs();
          const claimed = await claimStep(stack.db, { runId: id, function: 'conversation', seq, leaseOwner: `bench-${i}`, worker: 'bench', leaseMs: 60_000 });
          times.push(nowMs() - t0);
          if (!claimed) throw new Error(`the probe could not claim step ${seq}`);
          stateBytes = JSON.stringify(claimed.state).length;
        }
        return { ms: median(times), stateBytes };
      };
      const early = await loadAt(Math.min(9, steps - 1));
      const middle = await loadAt(Math.floor(steps / 2) - 1);
      const late = await loadAt(steps - 1);
      const figures: Figure[] = [
        {
          part: 'long',
          label: `${steps} steps, +${BYTES / 1024} KB of state each: bytes written per step (table growth)`,
          value: perStep,
          unit: 'B',
          note: `${(perStep / BYTES).toFixed(1)}× the delta; patches ${Math.round(stored.patches / 1024)} KB + ${stored.n} snapshots ${Math.round(stored.snapshots / 1024)} KB; server WAL ${Math.round(wal.bytes / steps / 1024)} KB/step (shared server)`,
        },
        { part: 'long', label: `claim + load at step 10 (state ${Math.round(early.stateBytes / 1024)} KB)`, value: early.ms, unit: 'ms', vsFloor: 'time' },
        { part: 'long', label: `claim + load at step ${steps} (state ${Math.round(late.stateBytes / 1024)} KB)`, value: late.ms, unit: 'ms', vsFloor: 'time', note: `${(late.ms / early.ms).toFixed(1)}× step 10; step ${Math.floor(steps / 2)}: ${middle.ms.toFixed(2)} ms` },
      ];
      return figures;
    } finally {
      await stack.close();
    }
  },
};
