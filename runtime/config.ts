/**
 * Configuration comes from the environment (README "Configuration"); this is the
 * only module that reads process.env for the engine. Everything else is handed a Config.
 */
import os from 'node:os';
import path from 'node:path';
import * as v from 'valibot';
import { type PriceTable, parsePrices } from './llm/prices.ts';

const int = (fallback: number, min = 0) =>
  v.optional(
    v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(min)),
    String(fallback),
  );
const text = () => v.optional(v.string());
const textOr = (fallback: string) => v.optional(v.string(), fallback);

const EnvSchema = v.object({
  PORT: int(8080),
  HOST: textOr('0.0.0.0'),
  DATABASE_URL: text(),
  REDIS_URL: text(),
  OPENAI_API_KEY: text(),
  OPENAI_BASE_URL: text(),
  BATON_MODEL: text(),
  // Steps mostly wait on an LLM or a tool, holding no connection: one process drives a thousand.
  BATON_CONCURRENCY: int(1000, 1),
  BATON_DB_POOL: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(1))),
  BATON_LEASE_MS: int(4000, 200),
  BATON_HEARTBEAT_MS: text(),
  BATON_GRACE_MS: int(25_000),
  BATON_STEP_TIMEOUT_MS: int(120_000, 1),
  BATON_MAX_ATTEMPTS: int(3, 1),
  BATON_MAX_CLAIMS: int(5, 1),
  // Old generation may grow 1 + N/100 × its live size before a full collection (scripts/lib/heap-growth.ts); 0: V8's own.
  BATON_HEAP_GROWTH_PERCENT: int(50, 0),
  BATON_SNAPSHOT_EVERY: v.optional(v.pipe(v.string(), v.trim(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(1))),
  BATON_SWEEP_AFTER_MS: int(20_000, 100),
  BATON_RETRY_BASE_MS: int(1000, 1),
  BATON_RETRY_MAX_MS: int(60_000, 1),
  BATON_REDIS_PREFIX: textOr('baton:'),
  BATON_AUTH: v.optional(v.picklist(['on', 'off']), 'on'),
  BATON_TOOL_SIGNING_KEY: text(),
  BATON_FUNCTIONS_DIR: text(),
  BATON_DATA_DIR: textOr('.baton'),
  BATON_LOG_LEVEL: v.optional(v.picklist(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  BATON_LOG_FORMAT: v.optional(v.picklist(['json', 'pretty', 'auto']), 'auto'),
  BATON_WORKER_NAME: text(),
  BATON_REVISION: text(),
  BATON_FAULTS: text(),
  BATON_TEST_HOOKS: text(),
  BATON_METRICS_PORT: v.optional(v.union([v.literal('off'), v.pipe(v.string(), v.trim(), v.regex(/^\d{1,5}$/, 'must be a port number or "off"'), v.transform(Number), v.maxValue(65_535))])),
  BATON_METRICS_HOST: textOr('127.0.0.1'),
  BATON_PRICES: text(),
  BATON_OPENAI_API: v.optional(v.picklist(['chat', 'responses']), 'chat'),
  // 32 characters at least: `baton deploy` makes 256 random bits (43 base64url characters).
  BATON_MAX_STREAMS_PER_TENANT: int(100, 1),
  BATON_STREAM_MAX_S: int(900, 1),
  BATON_TENANT_MAX_ACTIVE_RUNS: int(10_000, 1),
  BATON_TENANT_RUNS_PER_MIN: int(6000, 1),
  BATON_AUTH_FAILURES_PER_MIN: int(30, 1),
  BATON_AUTH_CACHE_MS: int(10_000, 100),
  BATON_TRUSTED_PROXY_HOPS: int(0),
  BATON_INVOKE_TOKEN: v.optional(v.pipe(v.string(), v.minLength(32, 'must be at least 32 characters (make one with `openssl rand -base64 32`)'))),
});

export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** `api`: Chat Completions (every OpenAI-compatible server) or OpenAI's Responses API. */
  openai: { apiKey: string | undefined; baseURL: string | undefined; model: string | undefined; api: 'chat' | 'responses' };
  concurrency: number;
  /** Connections this process may open to PostgreSQL (or to the pooler). */
  dbPoolSize: number;
  leaseMs: number;
  heartbeatMs: number;
  graceMs: number;
  stepTimeoutMs: number;
  maxAttempts: number;
  /** Claims of one step that never reached a commit or failure record before the run fails `crash_loop`. */
  maxClaims: number;
  /** BATON_SNAPSHOT_EVERY: a snapshot at every K-th step too (engine/snapshot-policy.ts); unset: by size only. */
  snapshotEvery: number | undefined;
  /** BATON_HEAP_GROWTH_PERCENT: a step-running process's heap growth factor (scripts/lib/heap-growth.ts); 0: V8's own. */
  heapGrowthPercent: number;
  sweepAfterMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  redisPrefix: string;
  auth: boolean;
  /** PEM (or base64 PEM) Ed25519 private key that signs capability tokens. */
  toolSigningKey: string | undefined;
  /** Tool server URLs by server name, from BATON_TOOL_<NAME>_URL. */
  toolUrls: Record<string, string>;
  /** Servers sent no capability token (BATON_TOOL_<NAME>_TOKEN=off): third-party servers with their own auth. */
  toolsWithoutToken: string[];
  functionsDir: string;
  dataDir: string;
  logLevel: string;
  /** JSON lines, or for people (pino-pretty); auto: pretty on a terminal. */
  logFormat: 'json' | 'pretty' | 'auto';
  workerName: string;
  revision: string | undefined;
  /** BATON_FAULTS: fault points for chaos tests (README "Fault points"); armed only with `testHooks`. */
  faults: string | undefined;
  /** BATON_TEST_HOOKS=1: this process may arm test-only hooks (fault points). */
  testHooks: boolean;
  /** The API's limits (README "Limits"); per-tenant ones are shared by all replicas through Redis. */
  limits: {
    /** Concurrent event streams per tenant; beyond → 429 too_many_streams. */
    streamsPerTenant: number;
    /** A stream ends after this long; the client resumes with Last-Event-ID. */
    streamMaxMs: number;
    /** Live runs (queued, running, waiting) per tenant; beyond → 429 quota_exceeded. */
    activeRunsPerTenant: number;
    /** New runs per tenant per minute (sliding window); beyond → 429 quota_exceeded. */
    runsPerMinute: number;
    /** 401s one address may cause per minute before it gets 429s. */
    authFailuresPerMinute: number;
    /** How long a key's lookup (known or unknown) is remembered; a revoked key works at most this long. */
    authCacheMs: number;
    /** Proxies in front of the API that append to X-Forwarded-For (0: the peer's address is the client's). */
    trustedProxyHops: number;
  };
  /** Knative mode: the secret dispatchers send to function pods (`Authorization: Bearer`); unset → invocations are refused. */
  invokeToken: string | undefined;
  /** Where Prometheus scrapes this process (`/metrics`), off the public API port. */
  metrics: { port: number; host: string; enabled: boolean; portGiven: boolean };
  /** Model prices (built-in table + BATON_PRICES): each LLM step's cost_usd. */
  prices: PriceTable;
}

export const DEFAULT_METRICS_PORT = 9464;

let takenSigningKey: string | undefined;

/**
 * BATON_TOOL_SIGNING_KEY, taken out of process.env the first time it is read: the
 * process keeps it in memory, and nothing it starts (a step's dependency shelling out)
 * inherits the key that mints capability tokens. Later reads get the kept value.
 */
function takeSigningKey(env: NodeJS.ProcessEnv, read: string | undefined): string | undefined {
  const inProcess = process.env.BATON_TOOL_SIGNING_KEY;
  if (inProcess !== undefined && (env === process.env || read === inProcess)) {
    takenSigningKey = inProcess;
    delete process.env.BATON_TOOL_SIGNING_KEY;
  }
  return read ?? (env === process.env ? takenSigningKey : undefined);
}

/** Parses the environment; a bad value is reported with its variable's name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = v.safeParse(EnvSchema, present);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw new Error(`invalid environment: ${v.getDotPath(issue) ?? '?'}: ${issue.message}`);
  }
  const e = parsed.output;
  const leaseMs = e.BATON_LEASE_MS;
  const heartbeatMs = e.BATON_HEARTBEAT_MS ? Number(e.BATON_HEARTBEAT_MS) : Math.max(50, Math.floor(leaseMs / 3));
  if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0 || heartbeatMs >= leaseMs) {
    throw new Error('invalid environment: BATON_HEARTBEAT_MS must be a positive number below BATON_LEASE_MS');
  }
  let prices: PriceTable;
  try {
    prices = parsePrices(e.BATON_PRICES);
  } catch (err) {
    throw new Error(`invalid environment: ${(err as Error).message}`, { cause: err });
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    openai: { apiKey: e.OPENAI_API_KEY, baseURL: e.OPENAI_BASE_URL, model: e.BATON_MODEL, api: e.BATON_OPENAI_API },
    concurrency: e.BATON_CONCURRENCY,
    // A step holds a connection only for its claim, heartbeats and commit, each well under a
    // millisecond of server time: 16 connections keep up with a thousand steps (more only
    // add PostgreSQL backends competing for the same cores).
    dbPoolSize: e.BATON_DB_POOL ?? Math.min(16, Math.max(4, Math.ceil(e.BATON_CONCURRENCY / 2))),
    leaseMs,
    heartbeatMs,
    graceMs: e.BATON_GRACE_MS,
    stepTimeoutMs: e.BATON_STEP_TIMEOUT_MS,
    maxAttempts: e.BATON_MAX_ATTEMPTS,
    maxClaims: e.BATON_MAX_CLAIMS,
    snapshotEvery: e.BATON_SNAPSHOT_EVERY,
    heapGrowthPercent: e.BATON_HEAP_GROWTH_PERCENT,
    sweepAfterMs: e.BATON_SWEEP_AFTER_MS,
    retryBaseMs: e.BATON_RETRY_BASE_MS,
    retryMaxMs: e.BATON_RETRY_MAX_MS,
    redisPrefix: e.BATON_REDIS_PREFIX,
    auth: e.BATON_AUTH === 'on',
    toolSigningKey: takeSigningKey(env, e.BATON_TOOL_SIGNING_KEY),
    toolUrls: toolUrlsFrom(env),
    toolsWithoutToken: toolsWithoutTokenFrom(env),
    // The project's own functions/ (where `npx baton` runs), also when Baton is an installed package.
    functionsDir: path.resolve(e.BATON_FUNCTIONS_DIR ?? 'functions'),
    dataDir: path.resolve(e.BATON_DATA_DIR),
    logLevel: e.BATON_LOG_LEVEL,
    logFormat: e.BATON_LOG_FORMAT,
    workerName: e.BATON_WORKER_NAME ?? `${os.hostname()}-${process.pid}`,
    // Knative sets K_REVISION in every revision's pods.
    revision: e.BATON_REVISION ?? env.K_REVISION,
    faults: e.BATON_FAULTS,
    testHooks: e.BATON_TEST_HOOKS === '1',
    invokeToken: e.BATON_INVOKE_TOKEN,
    limits: {
      streamsPerTenant: e.BATON_MAX_STREAMS_PER_TENANT,
      streamMaxMs: e.BATON_STREAM_MAX_S * 1000,
      activeRunsPerTenant: e.BATON_TENANT_MAX_ACTIVE_RUNS,
      runsPerMinute: e.BATON_TENANT_RUNS_PER_MIN,
      authFailuresPerMinute: e.BATON_AUTH_FAILURES_PER_MIN,
      authCacheMs: e.BATON_AUTH_CACHE_MS,
      trustedProxyHops: e.BATON_TRUSTED_PROXY_HOPS,
    },
    metrics: {
      port: typeof e.BATON_METRICS_PORT === 'number' ? e.BATON_METRICS_PORT : DEFAULT_METRICS_PORT,
      host: e.BATON_METRICS_HOST,
      enabled: e.BATON_METRICS_PORT !== 'off',
      portGiven: e.BATON_METRICS_PORT !== undefined,
    },
    prices,
    ...overrides,
  };
}

const serverName = (envName: string) => envName.toLowerCase().replaceAll('_', '-');

/** BATON_TOOL_GIT_URL=http://… → { git: 'http://…' }. Server names are lower-cased, `_` becomes `-`. */
function toolUrlsFrom(env: NodeJS.ProcessEnv): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    const m = /^BATON_TOOL_([A-Z0-9_]+)_URL$/.exec(key);
    if (m && value) urls[serverName(m[1])] = value;
  }
  return urls;
}

/** BATON_TOOL_EVERYTHING_TOKEN=off → ['everything']; any other value is a mistake worth stopping for. */
function toolsWithoutTokenFrom(env: NodeJS.ProcessEnv): string[] {
  const names: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    const m = /^BATON_TOOL_([A-Z0-9_]+)_TOKEN$/.exec(key);
    if (!m || !value) continue;
    if (value !== 'off' && value !== 'on') throw new Error(`invalid environment: ${key}: must be "on" or "off"`);
    if (value === 'off') names.push(serverName(m[1]));
  }
  return names;
}
