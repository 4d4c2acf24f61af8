/**
 * The platform: everything a process of Baton needs, wired once from the Config —
 * database, queue, event bus, functions, model, tool gateway, metrics, logs. The API,
 * the worker and the function apps all take a Platform; tests build one per test
 * with their own database and Redis prefix.
 */
import type { KeyObject } from 'node:crypto';
import { loadPrivateKey } from '../tools/lib/capability.ts';
import type { Config } from './config.ts';
import { type Database, type Db, openDatabase } from './db/connect.ts';
import { withDbRetry } from './db/retry.ts';
import { armFaultPoints } from './engine/fault-points.ts';
import { createInflight, type Inflight } from './engine/inflight.ts';
import { type EventBus, createMemoryBus } from './events/bus.ts';
import { createRedisBus } from './events/redis-bus.ts';
import { type FunctionRegistry, loadFunctions } from './functions.ts';
import { type ResolvedModel, resolveModel } from './llm/model.ts';
import { type Limits, createMemoryLimits } from './limits/limits.ts';
import { createRedisLimits } from './limits/redis-limits.ts';
import { type Logger, createLogger } from './log.ts';
import { type ToolGateway, createToolGateway } from './mcp/gateway.ts';
import { type Metrics, createMetrics } from './metrics.ts';
import { createMemoryQueue } from './queue/memory.ts';
import type { Queue } from './queue/queue.ts';
import { type RedisClient, connectRedis, createRedisQueue } from './queue/redis.ts';

export interface Platform {
  config: Config;
  database: Database;
  db: Db;
  queue: Queue;
  events: EventBus;
  /** The API's shared limits (Redis, or memory in the embedded mode). */
  limits: Limits;
  functions: FunctionRegistry;
  model: ResolvedModel;
  tools: ToolGateway;
  metrics: Metrics;
  log: Logger;
  /** Steps running in this process, for cancellation. */
  inflight: Inflight;
  /** Retries transient database errors (restart, failover) for up to `budgetMs`. */
  withDb<T>(fn: () => Promise<T>, budgetMs?: number): Promise<T>;
  close(): Promise<void>;
}

export interface PlatformOptions {
  /** Use these functions instead of loading config.functionsDir. */
  functions?: FunctionRegistry;
  /** Use this database (tests, the embedded mode) instead of opening config.databaseUrl. */
  database?: Database;
  signingKey?: KeyObject | null;
  /** Without REDIS_URL: the in-process queue and bus (embedded mode only). */
  allowMemoryQueue?: boolean;
  log?: Logger;
}

export async function createPlatform(config: Config, opts: PlatformOptions = {}): Promise<Platform> {
  const log = opts.log ?? createLogger(config.logLevel, { format: config.logFormat });
  // Loud on purpose, whatever the log level: a process that may kill itself must say so.
  const faultWarning = armFaultPoints(config.faults, config.testHooks);
  if (faultWarning) process.stderr.write(`${faultWarning}\n`);
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const functions = opts.functions ?? (await loadFunctions(config.functionsDir));
    const database =
      opts.database ??
      (await openDatabase({
        url: config.databaseUrl,
        dataDir: `${config.dataDir}/pgdata`,
        poolSize: config.dbPoolSize,
        onError: (err) => log.warn({ err: err.message }, 'database connection error'),
      }));
    if (!opts.database) closers.push(() => database.close());

    let queue: Queue;
    let events: EventBus;
    let limits: Limits;
    if (config.redisUrl) {
      const onError = (err: Error) => log.warn({ err: err.message }, 'redis connection error');
      const client: RedisClient = await connectRedis({ url: config.redisUrl, onError });
      closers.push(() => client.close().catch(() => client.destroy()));
      queue = createRedisQueue({ client, prefix: config.redisPrefix, onError });
      events = createRedisBus({ client, prefix: config.redisPrefix, onError });
      limits = createRedisLimits({ client, prefix: config.redisPrefix });
    } else if (opts.allowMemoryQueue) {
      queue = createMemoryQueue();
      events = createMemoryBus();
      limits = createMemoryLimits();
    } else {
      throw new Error('REDIS_URL is not set (only the embedded `baton dev` / `npm start` runs without Redis)');
    }
    closers.push(() => events.close(), () => queue.close());
    await queue.prepare([...functions.keys()]);

    const withDb = <T>(fn: () => Promise<T>, budgetMs = 15_000) =>
      withDbRetry(fn, {
        budgetMs,
        onRetry: (err, attempt) => log.debug({ err: (err as Error).message, attempt }, 'database busy or down; retrying'),
      });
    const signingKey =
      opts.signingKey !== undefined ? opts.signingKey : config.toolSigningKey ? loadPrivateKey(config.toolSigningKey) : null;
    const metrics = createMetrics({ queue, functions: () => [...functions.keys()] });
    return {
      config,
      database,
      db: database.db,
      queue,
      events,
      limits,
      functions,
      model: resolveModel(config),
      tools: createToolGateway({ db: database.db, urls: config.toolUrls, withoutToken: config.toolsWithoutToken, signingKey, withDb }),
      metrics,
      log,
      inflight: createInflight(),
      withDb,
      async close() {
        for (const close of closers.reverse()) await close().catch(() => {});
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}
