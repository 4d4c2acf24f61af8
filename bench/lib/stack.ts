/**
 * Baton as it runs in production, for the bench parts: `baton api` and `baton worker`
 * as separate processes with default settings, on a fresh database of their own (cloned
 * from the migrated template) and a Redis key prefix of their own, all on 127.0.0.1.
 * The bench process keeps a small pool on the same database to watch the runs.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import { type SQL, sql } from 'drizzle-orm';
import { type Db, query } from '../../runtime/db/connect.ts';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts';
import { type BatonProcess, startApiProcess, startWorkerProcess } from '../../test/helpers/processes.ts';
import { REDIS_URL, dropPrefix } from '../../test/helpers/redis.ts';
import { until } from './stats.ts';

export interface StackOptions {
  /** `baton worker` processes to start (default 1). */
  workers?: number;
  /** Start `baton api` (default true). */
  api?: boolean;
  /** Extra environment for every process (BATON_FUNCTIONS_DIR, OPENAI_BASE_URL, …); none by default. */
  env?: Record<string, string>;
}

export interface Stack {
  env: Record<string, string>;
  db: Db;
  dbName: string;
  api: (BatonProcess & { url: string }) | null;
  workers: BatonProcess[];
  addWorker(extraEnv?: Record<string, string>): Promise<BatonProcess>;
  stopWorker(w: BatonProcess): Promise<void>;
  close(): Promise<void>;
}

/** SIGTERM (a clean drain), then SIGKILL if it takes longer than `graceMs`. */
export async function stopProcess(p: BatonProcess, graceMs = 10_000): Promise<void> {
  if (!p.alive) return;
  p.signal('SIGTERM');
  const timer = setTimeout(() => p.signal('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const database: TestDatabase = await createTestDatabase();
  const prefix = `baton-bench:${crypto.randomBytes(4).toString('hex')}:`;
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    REDIS_URL,
    BATON_REDIS_PREFIX: prefix,
    BATON_AUTH: 'off',
    BATON_LOG_LEVEL: 'error',
    ...opts.env,
  };
  const workers: BatonProcess[] = [];
  let api: Stack['api'] = null;
  let spawned = 0;
  const stack: Stack = {
    env,
    db: database.database.db,
    dbName: database.name,
    get api() {
      return api;
    },
    workers,
    async addWorker(extraEnv = {}) {
      const w = await startWorkerProcess({ ...env, ...extraEnv }, `bench-worker-${++spawned}`);
      workers.push(w);
      return w;
    },
    async stopWorker(w) {
      await stopProcess(w);
      workers.splice(workers.indexOf(w), 1);
    },
    async close() {
      await Promise.all([...workers, ...(api ? [api] : [])].map((p) => stopProcess(p)));
      await database.drop();
      await dropPrefix(prefix);
    },
  };
  try {
    if (opts.api !== false) api = await startApiProcess(env);
    for (let i = 0; i < (opts.workers ?? 1); i++) await stack.addWorker();
    return stack;
  } catch (err) {
    await stack.close().catch(() => {});
    throw err;
  }
}

/**
 * The bench's client: node:http over keep-alive connections (at most 64 open), lighter than
 * fetch, so the client takes less of the CPU it shares with what it measures.
 */
const client = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function post(url: string, body: string): Promise<{ status: number; json: { id?: string } }> {
  try {
    return await postOnce(url, body);
  } catch (err) {
    // A kept-alive connection the server closed as idle just as this request went out on it: the
    // server never read the request (Node's documented race), so it is sent once more on a new one.
    if ((err as { reusedSocket?: boolean }).reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET') return postOnce(url, body);
    throw err;
  }
}

function postOnce(url: string, body: string): Promise<{ status: number; json: { id?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: client, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as { id?: string } });
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
    req.end(body);
  });
}

/** POSTs `count` runs at once through the HTTP API; resolves with their ids (every answer must be a 202). */
export async function submitRuns(apiUrl: string, fn: string, input: unknown, count: number): Promise<string[]> {
  const body = JSON.stringify(input);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const { status, json } = await post(`${apiUrl}/v1/functions/${fn}/runs`, body);
      if (status !== 202 || !json.id) throw new Error(`POST /v1/functions/${fn}/runs answered ${status}: ${JSON.stringify(json)}`);
      return json.id;
    }),
  );
}

/** The ids as one uuid[] parameter: a poll stays one small statement however many runs it watches. */
export const idArray = (ids: readonly string[]): SQL => sql`${`{${ids.join(',')}}`}::uuid[]`;

/**
 * Waits until every run has finished and all succeeded; resolves with the moment the
 * last one finished (its commit's `finished_at`, on this machine's clock, epoch ms).
 * The poll only counts runs still live (cheap: the watcher must not slow what it watches).
 */
export async function waitForRuns(db: Db, ids: readonly string[], timeoutMs: number, everyMs = 20): Promise<number> {
  await until(
    async () => {
      const [r] = await query<{ live: number }>(
        db,
        sql`select count(*)::int as live from runs where id = any(${idArray(ids)}) and status in ('queued', 'running', 'waiting')`,
      );
      return r.live === 0 ? r : null;
    },
    `${ids.length} runs to finish`,
    timeoutMs,
    everyMs,
  );
  const [row] = await query<{ finished: number; failed: number; end_ms: number | null }>(
    db,
    sql`select count(*) filter (where status in ('succeeded', 'failed', 'cancelled'))::int as finished,
               count(*) filter (where status in ('failed', 'cancelled'))::int as failed,
               (extract(epoch from max(finished_at)) * 1000)::float8 as end_ms
        from runs where id = any(${idArray(ids)})`,
  );
  if (row.finished !== ids.length) throw new Error(`${ids.length - row.finished} of ${ids.length} runs are missing`);
  if (row.failed > 0) throw new Error(`${row.failed} of ${ids.length} runs did not succeed`);
  return row.end_ms ?? Number.NaN;
}

export interface StepTimings {
  /** Claim to commit of each step (steps.started_at → finished_at), ms. */
  inStep: number[];
  /** One step's commit to the next step's claim, ms. */
  handOn: number[];
}

/** Per-step timings read from the step rows (timestamps with microseconds, taken by PostgreSQL). */
export async function stepTimings(db: Db, ids: readonly string[]): Promise<StepTimings> {
  const rows = await query<{ in_step: number; hand_on: number | null }>(
    db,
    sql`select (extract(epoch from finished_at - started_at) * 1000)::float8 as in_step,
               (extract(epoch from lead(started_at) over w - finished_at) * 1000)::float8 as hand_on
        from steps where run_id = any(${idArray(ids)})
        window w as (partition by run_id order by seq)`,
  );
  return {
    inStep: rows.map((r) => r.in_step),
    handOn: rows.filter((r) => r.hand_on !== null).map((r) => r.hand_on as number),
  };
}
