/**
 * A whole Baton platform for one test: its own database and Redis prefix, the demo's
 * tool servers on loopback ports, the LLM stub (or the offline model), the API as a
 * Hono app (call it with `api.request(...)`, no server needed) and, on request, a worker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApi } from '../../runtime/api/app.ts';
import { type Config, loadConfig } from '../../runtime/config.ts';
import type { FunctionRegistry } from '../../runtime/functions.ts';
import { loadAi } from '../../runtime/llm/ai-sdk.ts';
import { createPlatform, type Platform } from '../../runtime/platform.ts';
import { getRunWithSteps, type RunWithSteps } from '../../runtime/store/runs.ts';
import { stateBefore } from '../../runtime/store/step-detail.ts';
import type { State } from '../../runtime/state.ts';
import { createWorker, type Worker, type WorkerOptions } from '../../runtime/worker/worker.ts';
import { generateKeyPair, loadPrivateKey } from '../../tools/lib/capability.ts';
import { type LocalTools, startLocalTools } from '../../scripts/lib/embedded.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { type LlmStub, startLlmStub, type LlmStubOptions } from './llm-stub.ts';
import { REDIS_URL, dropPrefix, testPrefix } from './redis.ts';

/** The invoke credential of every test platform (and of processes spawned with its env). */
export const TEST_INVOKE_TOKEN = 'test-invoke-token-0123456789abcdefghij';

export interface TestPlatformOptions {
  functions?: FunctionRegistry;
  /** Extra environment for loadConfig (BATON_LEASE_MS, …). */
  env?: Record<string, string>;
  /** The LLM stub's options, or 'offline' for the offline model. */
  llm?: LlmStubOptions | 'offline';
  /** Start the git and review tool servers (default true). */
  tools?: boolean;
  /** Start a worker (default true). */
  worker?: boolean | WorkerOptions;
  /** The capability-token key pair (default: a fresh one), for tests that run their own tool servers. */
  keys?: { privateKeyPem: string; publicKeyPem: string };
  /**
   * Reach the database through another URL (e.g. a TCP proxy a test can cut): the
   * platform and `env.DATABASE_URL` use it; `db.database` stays a direct connection.
   */
  connectVia?: (url: string) => string;
}

export interface TestPlatform {
  p: Platform;
  config: Config;
  db: TestDatabase;
  prefix: string;
  api: ReturnType<typeof createApi>;
  worker: Worker | null;
  llm: LlmStub | null;
  tools: LocalTools | null;
  /** The capability-token key pair: the gateway signs with the private key, tool servers verify with the public one. */
  keys: { privateKeyPem: string; publicKeyPem: string };
  /** Environment that points a child process at the same database, Redis prefix, tools and LLM. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startTestPlatform(opts: TestPlatformOptions = {}): Promise<TestPlatform> {
  const db = await createTestDatabase();
  const prefix = testPrefix();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-test-'));
  const keys = opts.keys ?? generateKeyPair();
  const tools = opts.tools === false ? null : await startLocalTools(dir, keys.publicKeyPem);
  const llm = opts.llm === 'offline' ? null : await startLlmStub(opts.llm ?? {});
  const dbUrl = opts.connectVia ? opts.connectVia(db.url) : db.url;
  const env: Record<string, string> = {
    DATABASE_URL: dbUrl,
    REDIS_URL,
    BATON_REDIS_PREFIX: prefix,
    BATON_AUTH: 'off',
    BATON_LOG_LEVEL: process.env.BATON_LOG_LEVEL ?? 'error',
    BATON_DATA_DIR: dir,
    BATON_TOOL_SIGNING_KEY: Buffer.from(keys.privateKeyPem).toString('base64'),
    // Function apps and dispatchers share it (Knative mode), as they share a Secret in a cluster.
    BATON_INVOKE_TOKEN: TEST_INVOKE_TOKEN,
    BATON_RETRY_BASE_MS: '50',
    BATON_RETRY_MAX_MS: '500',
    // Test files run in parallel against one server (max_connections 100): small pools.
    BATON_DB_POOL: '4',
    ...(llm ? { OPENAI_API_KEY: 'test-key', OPENAI_BASE_URL: llm.url, BATON_MODEL: 'stub-model' } : {}),
    ...(tools ? { BATON_TOOL_GIT_URL: tools.urls.git, BATON_TOOL_REVIEW_URL: tools.urls.review } : {}),
    ...opts.env,
  };
  const config = loadConfig(env);
  const p = await createPlatform(config, {
    ...(opts.connectVia ? {} : { database: db.database }),
    signingKey: loadPrivateKey(keys.privateKeyPem),
    ...(opts.functions ? { functions: opts.functions } : {}),
  });
  let worker: Worker | null = null;
  if (opts.worker !== false) {
    worker = createWorker(p, typeof opts.worker === 'object' ? opts.worker : {});
    await worker.start();
    // As `baton worker` does once ready (runtime/worker/preload.ts), here awaited: a test's first
    // model call must not load the AI SDK inside its step's timeout (400 ms in some tests).
    await Promise.all([loadAi(), p.model.load()]);
  }
  return {
    p,
    config,
    db,
    prefix,
    api: createApi(p),
    worker,
    llm,
    tools,
    keys,
    env,
    async close() {
      await worker?.stop(2000).catch(() => {});
      await p.close();
      await Promise.all([tools?.close(), llm?.close()]);
      await db.drop();
      await dropPrefix(prefix);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

/** Polls until the run reaches one of `statuses` (default: any terminal one); fails after `timeoutMs`. */
/** A run's state after its last committed step: its last snapshot plus the patches after it, as a claim loads it. */
export function finalState(p: Platform, id: string): Promise<State> {
  return stateBefore(p.db, id, 2_147_483_647);
}

export async function waitForRun(
  p: Platform,
  id: string,
  statuses: readonly string[] = TERMINAL,
  timeoutMs = 20_000,
): Promise<RunWithSteps> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const full = await getRunWithSteps(p.db, id);
    if (full && statuses.includes(full.run.status)) return full;
    if (Date.now() > deadline) {
      throw new Error(`run ${id} did not reach ${statuses.join('|')} in ${timeoutMs} ms (now ${full?.run.status}, steps ${full?.steps.map((s) => `${s.seq}:${s.name}:${s.status}`).join(',')})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Polls `check` until it returns a truthy value. */
export async function waitFor<T>(check: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** POSTs a run through the API app and returns its id. */
export async function trigger(api: TestPlatform['api'], fn: string, input: unknown, headers: Record<string, string> = {}): Promise<string> {
  const res = await api.request(`/v1/functions/${fn}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as { id: string };
  if (res.status !== 202) throw new Error(`trigger ${fn}: ${res.status} ${JSON.stringify(body)}`);
  return body.id;
}
