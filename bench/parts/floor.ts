/**
 * Part 1, the physical floor: the least one step transition must do on this machine,
 * from Node. One PostgreSQL transaction that writes a row (the step) and updates
 * another (the run), as one statement and so one round trip and one WAL flush, then
 * an XADD (hand on) and an XACK (ack), each a Redis round trip. Measured one at a
 * time and with 10 at once (each lane its own run row, so no lane waits on another's
 * lock). A second shape, two write transactions per transition (claim, then commit,
 * as Baton's protocol does today), shows what the second WAL flush costs.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { createTestDatabase } from '../../test/helpers/db.ts';
import { REDIS_URL, dropPrefix } from '../../test/helpers/redis.ts';
import type { Figure, Floor } from '../lib/report.ts';
import { median, nowMs, percentile, pool } from '../lib/stats.ts';

const LANES = 10;

export interface FloorResult extends Floor {
  seqP99: number;
  /** Two write transactions per transition, one at a time (ms) and 10 at once (per second). */
  twoTxSeqMs: number;
  twoTxC10PerSec: number;
}

/** A floor lane of its own (a database, a stream): one transition at a time, its time in ms each. */
export interface FloorLane {
  transition(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the floor's tables and stream for `lanes` lanes. `oneTx(lane)` is one transition;
 * `twoTx(lane)` the same with a separate claim transaction first.
 */
async function openFloor(lanes: number) {
  const database = await createTestDatabase({ open: false });
  const prefix = `baton-bench:${crypto.randomBytes(4).toString('hex')}:`;
  const pgPool = new pg.Pool({ connectionString: database.url, max: lanes });
  pgPool.on('error', () => {}); // an idle client dropped by the server: the next query reports it
  const redis = await createClient({ url: REDIS_URL }).connect();
  const stream = `${prefix}floor`;
  const close = async () => {
    await redis.close().catch(() => {});
    await pgPool.end().catch(() => {});
    await database.drop();
    await dropPrefix(prefix);
  };
  try {
    await pgPool.query(`create table floor_runs (id int primary key, next_seq int not null, updated_at timestamptz not null)`);
    await pgPool.query(`create table floor_steps (run_id int, seq int, result jsonb, finished_at timestamptz, primary key (run_id, seq))`);
    await pgPool.query(`insert into floor_runs select g, 0, now() from generate_series(0, ${lanes - 1}) g`);
    await redis.xGroupCreate(stream, 'workers', '0', { MKSTREAM: true });
  } catch (err) {
    await close();
    throw err;
  }
  const seqs = new Array<number>(lanes).fill(0);

  /** One transition; with `claimFirst`, a separate write transaction before it (a claim, as Baton does today). */
  const transition = (claimFirst: boolean) => async (lane: number) => {
    const seq = seqs[lane]++;
    if (claimFirst) await pgPool.query(`update floor_runs set updated_at = now() where id = $1`, [lane]);
    await pgPool.query(
      `with step as (insert into floor_steps values ($1, $2, '{"ok":true}', now()))
       update floor_runs set next_seq = $2 + 1, updated_at = now() where id = $1`,
      [lane, seq],
    );
    const id = await redis.xAdd(stream, '*', { run_id: String(lane), seq: String(seq + 1) });
    await redis.xAck(stream, 'workers', id);
  };
  return { oneTx: transition(false), twoTx: transition(true), close };
}

/** One lane, for a part that measures the floor alongside its own figure (interleaved, so drift hits both alike). */
export async function openFloorLane(): Promise<FloorLane> {
  const floor = await openFloor(1);
  return {
    async transition() {
      const t0 = nowMs();
      await floor.oneTx(0);
      return nowMs() - t0;
    },
    close: floor.close,
  };
}

export async function measureFloor(opts: { sequential: number; concurrent: number }): Promise<FloorResult> {
  const { oneTx, twoTx, close } = await openFloor(LANES);
  try {
    const sequential = async (transition: (lane: number) => Promise<void>) => {
      const times: number[] = [];
      for (let i = 0; i < opts.sequential; i++) {
        const t0 = nowMs();
        await transition(0);
        times.push(nowMs() - t0);
      }
      return times;
    };
    const concurrent = async (transition: (lane: number) => Promise<void>) => {
      const perLane = Math.ceil(opts.concurrent / LANES);
      const t0 = nowMs();
      await pool(LANES, LANES, async (lane) => {
        for (let i = 0; i < perLane; i++) await transition(lane);
      });
      return (perLane * LANES) / ((nowMs() - t0) / 1000);
    };

    await sequential(oneTx); // warm up connections and caches
    const seq = await sequential(oneTx);
    const c10 = await concurrent(oneTx);
    const seq2 = await sequential(twoTx);
    const c10two = await concurrent(twoTx);
    return { seqMs: median(seq), seqP99: percentile(seq, 99), c10PerSec: c10, twoTxSeqMs: median(seq2), twoTxC10PerSec: c10two };
  } finally {
    await close();
  }
}

export function floorFigures(f: FloorResult): Figure[] {
  return [
    { part: 'floor', label: 'one transition (1 PG write tx + XADD + XACK), one at a time', value: f.seqMs, unit: 'ms', note: `p99 ${f.seqP99.toFixed(2)} ms` },
    { part: 'floor', label: 'transitions per second, 10 at once', value: f.c10PerSec, unit: 'steps/s' },
    { part: 'floor', label: 'with two PG write transactions per transition, one at a time', value: f.twoTxSeqMs, unit: 'ms', vsFloor: 'time' },
    { part: 'floor', label: 'with two PG write transactions per transition, 10 at once', value: f.twoTxC10PerSec, unit: 'steps/s', vsFloor: 'rate' },
  ];
}
