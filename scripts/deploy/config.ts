/**
 * The deploy configuration: `baton.config.ts` at the project root exports
 * `defineConfig({...})`; command-line flags override it. Validated with valibot, so
 * a typo in a key or a bad value is reported with its path before anything renders.
 *
 * @example
 * export default defineConfig({ namespace: 'baton', image: 'registry.example/baton:1.0.0', mode: 'knative' });
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as v from 'valibot';

const DNS_LABEL = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/;

const label = (what: string) => v.pipe(v.string(), v.regex(DNS_LABEL, `${what} must be a DNS label (lower-case letters, digits, "-")`));
const quantity = v.pipe(v.string(), v.regex(QUANTITY, 'must be a Kubernetes quantity such as "500m", "256Mi" or "10Gi"'));
const count = (min: number, max = 10_000) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

const Resources = v.strictObject({
  requests: v.optional(v.strictObject({ cpu: v.optional(quantity), memory: v.optional(quantity) })),
  limits: v.optional(v.strictObject({ cpu: v.optional(quantity), memory: v.optional(quantity) })),
});

const SecretKey = v.strictObject({ name: label('secret name'), key: v.pipe(v.string(), v.minLength(1)) });

const Tool = v.strictObject({
  /** Command line of the server (default: `node tools/<name>/server.ts`). */
  command: v.optional(v.array(v.string())),
  /** Plain settings (no credentials here: those go in `secrets`). */
  env: v.optional(v.record(v.pipe(v.string(), v.regex(/^[A-Z_][A-Z0-9_]*$/)), v.string()), {}),
  /** Secrets whose keys become the server's environment (envFrom); referenced by name, never rendered. */
  secrets: v.optional(v.array(label('secret name')), []),
  /** Directories the server writes to (an emptyDir each; the root filesystem is read-only). */
  writableDirs: v.optional(v.array(v.pipe(v.string(), v.startsWith('/'))), []),
  replicas: v.optional(count(1, 100), 1),
  resources: v.optional(Resources),
});

const FunctionOverrides = v.strictObject({
  /** Steps one dispatcher or worker pod runs at once (BATON_CONCURRENCY); knative mode: also containerConcurrency. */
  concurrency: v.optional(count(1, 1000)),
  /** KEDA target: backlog (consumer-group lag) per replica. */
  lagCount: v.optional(count(1)),
  /** KEDA target: steps in flight (pending entries) per replica. */
  pendingEntriesCount: v.optional(count(1)),
  minReplicas: v.optional(count(0, 1000)),
  maxReplicas: v.optional(count(1, 1000)),
  resources: v.optional(Resources),
});

const Redis = v.union([
  v.strictObject({
    embedded: v.strictObject({
      image: v.optional(v.string(), 'redis:7.4-alpine'),
      resources: v.optional(Resources),
    }),
  }),
  v.strictObject({
    external: v.strictObject({
      /** host:port, as KEDA's scaler and the pods reach it. */
      address: v.pipe(v.string(), v.regex(/^[A-Za-z0-9.-]+:\d+$/, 'must be host:port')),
      /** The password (URL-safe characters), from a Secret you create. */
      passwordSecret: SecretKey,
      database: v.optional(count(0, 15), 0),
      tls: v.optional(v.boolean(), false),
    }),
  }),
]);

export const DeployConfigSchema = v.strictObject({
  namespace: label('namespace'),
  /** The image built from the project's Dockerfile. */
  image: v.pipe(v.string(), v.minLength(1)),
  mode: v.optional(v.picklist(['knative', 'worker']), 'knative'),
  /** Prefix of every shared object's name. */
  name: v.optional(label('name'), 'baton'),
  clusterDomain: v.optional(v.string(), 'cluster.local'),
  /** Redis key prefix (BATON_REDIS_PREFIX): streams are `<prefix>steps:<function>`. */
  redisPrefix: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9:_.-]*$/)), 'baton:'),
  logLevel: v.optional(v.picklist(['fatal', 'error', 'warn', 'info', 'debug', 'trace']), 'info'),
  /** Seconds a stopping pod gives its in-flight steps (BATON_GRACE_MS); pods get more to exit. */
  drainSeconds: v.optional(count(1, 3600), 25),
  database: v.optional(
    v.strictObject({
      instances: v.optional(count(1, 9), 3),
      storage: v.optional(quantity, '10Gi'),
      storageClass: v.optional(v.string()),
      imageName: v.optional(v.string()),
      database: v.optional(label('database'), 'baton'),
      owner: v.optional(label('owner'), 'baton'),
      maxConnections: v.optional(count(10, 10_000), 200),
      resources: v.optional(Resources),
      pooler: v.optional(
        v.strictObject({
          instances: v.optional(count(1, 20), 2),
          defaultPoolSize: v.optional(count(1, 1000), 20),
          maxClientConn: v.optional(count(1, 100_000), 1000),
        }),
        {},
      ),
    }),
    {},
  ),
  redis: v.optional(Redis, { embedded: { image: 'redis:7.4-alpine' } }),
  /** Namespace of the KEDA operator (it reads Redis to scale). */
  kedaNamespace: v.optional(label('namespace'), 'keda'),
  llm: v.optional(
    v.strictObject({
      /** Secret with OPENAI_API_KEY (and optionally OPENAI_BASE_URL); absent → the offline model. */
      secret: v.optional(label('secret name')),
      model: v.optional(v.string()),
    }),
    {},
  ),
  api: v.optional(v.strictObject({ replicas: v.optional(count(1, 100), 2), auth: v.optional(v.boolean(), true), resources: v.optional(Resources) }), {}),
  tools: v.optional(v.record(label('tool server name'), Tool), {}),
  /** Defaults for every function, then per-function overrides. */
  defaults: v.optional(FunctionOverrides, {}),
  functions: v.optional(v.record(label('function name'), FunctionOverrides), {}),
  resources: v.optional(
    v.strictObject({
      api: v.optional(Resources),
      worker: v.optional(Resources),
      function: v.optional(Resources),
      dispatcher: v.optional(Resources),
      housekeeper: v.optional(Resources),
      migrate: v.optional(Resources),
    }),
    {},
  ),
});

export type DeployConfigInput = v.InferInput<typeof DeployConfigSchema>;
export type DeployConfig = v.InferOutput<typeof DeployConfigSchema>;
export type ResourcesConfig = v.InferOutput<typeof Resources>;
export type ToolConfig = v.InferOutput<typeof Tool>;

/** Types `baton.config.ts`; validation happens when it is loaded. */
export function defineConfig(config: DeployConfigInput): DeployConfigInput {
  return config;
}

export interface Flags {
  namespace?: string | undefined;
  image?: string | undefined;
  mode?: string | undefined;
}

/** Validates a config object (flags already merged); errors name the offending path. */
export function parseConfig(input: unknown): DeployConfig {
  const parsed = v.safeParse(DeployConfigSchema, input);
  if (parsed.success) return parsed.output;
  const lines = parsed.issues.slice(0, 10).map((i) => `  ${v.getDotPath(i) ?? '(root)'}: ${i.message}`);
  throw new Error(`invalid deploy configuration:\n${lines.join('\n')}`);
}

/** Loads `baton.config.ts` (or `file`) when present, applies the flags, validates. */
export async function loadDeployConfig(root: string, flags: Flags, file?: string): Promise<DeployConfig> {
  const configFile = path.resolve(root, file ?? 'baton.config.ts');
  let base: Record<string, unknown> = {};
  if (fs.existsSync(configFile)) {
    const mod = (await import(pathToFileURL(configFile).href)) as { default?: unknown };
    if (!mod.default || typeof mod.default !== 'object') throw new Error(`${configFile}: export default defineConfig({...})`);
    base = mod.default as Record<string, unknown>;
  } else if (file) {
    throw new Error(`no config file ${configFile}`);
  }
  const merged: Record<string, unknown> = { ...base };
  for (const key of ['namespace', 'image', 'mode'] as const) if (flags[key] !== undefined) merged[key] = flags[key];
  if (merged.namespace === undefined || merged.image === undefined) {
    throw new Error('give --namespace and --image (or set them in baton.config.ts)');
  }
  return parseConfig(merged);
}
