/**
 * What every peer harness shares: the bench part (bench/parts/peers.ts) starts one
 * peer per process, with a database and a Redis prefix of its own, and reads one
 * result line back. A peer runs chains of `steps` no-op steps, each step durably
 * recorded the peer's own way; the harness times single runs (submit → the last
 * step recorded, / steps) and a burst of runs submitted at once (steps/s).
 *
 * Environment: BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_REDIS_PREFIX, BENCH_STEPS,
 * BENCH_SINGLE (single runs), BENCH_RUNS (the burst), BENCH_CONCURRENCY (steps a
 * worker runs at once, Baton's default).
 */
import { median, nowMs, pool } from '../lib/stats.ts';

export interface PeerEnv {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  steps: number;
  concurrency: number;
}

export interface Peer {
  /** Runs one chain; resolves once the peer says it has finished (its last step ran). */
  run(id: string, steps: number): Promise<void>;
  /**
   * When the last of these runs was recorded as finished by the peer itself (epoch ms),
   * for peers that write that moment down after telling us; default: when run() resolved.
   */
  finishedAt?(ids: string[]): Promise<number>;
  /** Runs at most this many at once from the harness (for libraries without a worker pool of their own). */
  inFlight?: number;
  close(): Promise<void>;
}

export interface PeerResult {
  perStepMs: number[];
  stepsPerSec: number;
}

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

export function peerEnv(): PeerEnv {
  return {
    databaseUrl: env('BENCH_DATABASE_URL'),
    redisUrl: env('BENCH_REDIS_URL', 'redis://127.0.0.1:6379'),
    redisPrefix: env('BENCH_REDIS_PREFIX', 'bench-peer:'),
    steps: Number(env('BENCH_STEPS', '10')),
    concurrency: Number(env('BENCH_CONCURRENCY', '32')),
  };
}

let seq = 0;
const newId = () => `run-${process.pid}-${++seq}`;

async function timed(peer: Peer, ids: string[], steps: number): Promise<number> {
  const ended = new Map<string, number>();
  await pool(ids.length, peer.inFlight ?? ids.length, async (i) => {
    await peer.run(ids[i], steps);
    ended.set(ids[i], nowMs());
  });
  return peer.finishedAt ? peer.finishedAt(ids) : Math.max(...ended.values());
}

/** Measures the peer and prints `RESULT {json}` on stdout; any failure exits non-zero. */
export async function measure(start: (e: PeerEnv) => Promise<Peer>): Promise<void> {
  const e = peerEnv();
  const singles = Number(env('BENCH_SINGLE', '10'));
  const runs = Number(env('BENCH_RUNS', '500'));
  const deadline = setTimeout(() => {
    console.error('peer harness: over 10 minutes, giving up');
    process.exit(3);
  }, 600_000);
  const peer = await start(e);
  try {
    for (let i = 0; i < 3; i++) await timed(peer, [newId()], e.steps); // warm up
    await timed(peer, Array.from({ length: 20 }, newId), e.steps);
    const perStepMs: number[] = [];
    for (let i = 0; i < singles; i++) {
      const t0 = nowMs();
      const end = await timed(peer, [newId()], e.steps);
      perStepMs.push((end - t0) / e.steps);
    }
    const ids = Array.from({ length: runs }, newId);
    const t0 = nowMs();
    const end = await timed(peer, ids, e.steps);
    const result: PeerResult = { perStepMs, stepsPerSec: (runs * e.steps) / ((end - t0) / 1000) };
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    console.error(`median per step ${median(perStepMs).toFixed(2)} ms, ${Math.round(result.stepsPerSec)} steps/s`);
  } finally {
    clearTimeout(deadline);
    await peer.close();
  }
}

/** A promise per run id, resolved when the peer's last step of that run is done. */
export function finishLine() {
  const waiting = new Map<string, () => void>();
  return {
    wait: (id: string) => new Promise<void>((resolve) => waiting.set(id, resolve)),
    finish(id: string) {
      waiting.get(id)?.();
      waiting.delete(id);
    },
  };
}
