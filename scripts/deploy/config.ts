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

const ENV_NAME = v.pipe(v.string(), v.regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name (A-Z, 0-9, _)'));
const Env = v.record(ENV_NAME, v.string());
const absolute = v.pipe(v.string(), v.startsWith('/', 'must be an absolute path'));

/** A volume of a tool server: an emptyDir (filled by an init container) or a PersistentVolumeClaim. */
const Volume = v.union([
  v.strictObject({ mountPath: absolute, readOnly: v.optional(v.boolean()), emptyDir: v.strictObject({ sizeLimit: v.optional(quantity) }) }),
  v.strictObject({ mountPath: absolute, readOnly: v.optional(v.boolean()), persistentVolumeClaim: v.strictObject({ claimName: label('claim name') }) }),
]);

/** Runs to completion before the server starts, with the server's volumes mounted (e.g. `git clone` into one). */
const InitContainer = v.strictObject({
  name: label('init container name'),
  command: v.pipe(v.array(v.string()), v.minLength(1)),
  /** Default: the Baton image (it has git). */
  image: v.optional(v.pipe(v.string(), v.minLength(1))),
  env: v.optional(Env, {}),
  resources: v.optional(Resources),
});

/**
 * Per-tenant tool policy (BATON_TOOL_POLICY): what each tenant's runs may touch, e.g.
 * `{ tenants: { acme: { repos: ['acme/*'] } } }`. The tool servers read and enforce it.
 */
const ToolPolicy = v.strictObject({
  tenants: v.record(
    v.string(),
    // The same shape the tool servers accept (tools/lib/policy.ts): `owner/name` patterns, `*` within a segment.
    v.strictObject({ repos: v.optional(v.array(v.pipe(v.string(), v.regex(/^[^/\s]+\/[^/\s]+$/, 'a repository pattern is "owner/name" (with * for any run of characters but /)')))) }),
  ),
});

const Tool = v.strictObject({
  /** Command line of the server (default: `node tools/<name>/server.ts`); it runs under tini either way. */
  command: v.optional(v.array(v.string())),
  /** Plain settings (no credentials here: those go in `secretFiles`, or `secrets`). */
  env: v.optional(Env, {}),
  /**
   * Credentials as files: `{ GITHUB_TOKEN_FILE: { secret: 'github-token', key: 'token' } }`
   * mounts Secret `github-token` read-only and sets GITHUB_TOKEN_FILE to the path of its
   * key `token`. The value never enters the process environment.
   */
  secretFiles: v.optional(v.record(ENV_NAME, v.strictObject({ secret: label('secret name'), key: v.pipe(v.string(), v.regex(/^[-._a-zA-Z0-9]+$/)) })), {}),
  /** Secrets whose keys become the server's environment (envFrom): for servers that only read env vars. Prefer `secretFiles`. */
  secrets: v.optional(v.array(label('secret name')), []),
  /** Directories the server writes to (an emptyDir each; the root filesystem is read-only). */
  writableDirs: v.optional(v.array(absolute), []),
  /** Volumes by name, mounted into the server and its init containers. */
  volumes: v.optional(v.record(label('volume name'), Volume), {}),
  initContainers: v.optional(v.array(InitContainer), []),
  /** Whether the server gets the side-effect ledger (BATON_TOOL_LEDGER_URL); read-only servers need none. */
  ledger: v.optional(v.boolean(), true),
  /** This server's tenant policy (default: the top-level `toolPolicy`). */
  policy: v.optional(ToolPolicy),
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
  /** Plain settings for the function's pods (no credentials), e.g. BATON_LEASE_MS. */
  env: v.optional(Env),
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
  /**
   * Seconds a stopping API or housekeeper pod drains (BATON_GRACE_MS), and the least any
   * pod drains. Pods that run or dispatch steps drain for their longest step plus a
   * margin (scripts/lib/step-budget.ts), so a scale-in never cuts a step short.
   */
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
  /** Namespace of the CloudNativePG operator (it reaches the database pods on 5432 and 8000). */
  cnpgNamespace: v.optional(label('namespace'), 'cnpg-system'),
  /** Namespaces whose pods may call function pods: Knative's activator and the networking layer's gateway. */
  knativeNamespaces: v.optional(v.pipe(v.array(label('namespace')), v.minLength(1)), ['knative-serving', 'kourier-system']),
  /** Namespace of the Prometheus that scrapes the pods' metrics port; null: none may. */
  monitoringNamespace: v.optional(v.nullable(label('namespace')), 'monitoring'),
  /**
   * The tool servers' side-effect ledger: a CloudNativePG cluster of its own
   * (`<name>-tools-db`), so tool servers never hold the runtime's credentials and the
   * runtime never holds theirs.
   */
  toolLedger: v.optional(
    v.strictObject({
      instances: v.optional(count(1, 9), 2),
      storage: v.optional(quantity, '2Gi'),
      storageClass: v.optional(v.string()),
      imageName: v.optional(v.string()),
      resources: v.optional(Resources),
    }),
    {},
  ),
  /** The tenant policy every tool server enforces (BATON_TOOL_POLICY); absent: no tenant may touch anything. */
  toolPolicy: v.optional(ToolPolicy, { tenants: {} }),
  llm: v.optional(
    v.strictObject({
      /** Secret with OPENAI_API_KEY (and optionally OPENAI_BASE_URL); absent → the offline model. */
      secret: v.optional(label('secret name')),
      model: v.optional(v.string()),
    }),
    {},
  ),
  /**
   * OpenTelemetry (README "Observability"): every Baton pod and tool server sends its
   * spans to this OTLP/HTTP endpoint (egress is open; a collector in the cluster is usual).
   */
  tracing: v.optional(
    v.strictObject({
      endpoint: v.pipe(v.string(), v.regex(/^https?:\/\/[^/\s]+/, 'must be the collector\'s OTLP/HTTP base URL, e.g. http://otel-collector.observability:4318')),
      /** Share of runs traced, each whole (a run's steps follow its root's decision). */
      sampleRatio: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(1)), 1),
    }),
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
export type ToolPolicyConfig = v.InferOutput<typeof ToolPolicy>;

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
