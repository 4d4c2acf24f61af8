/**
 * Every object name, label, Secret and in-cluster address `baton deploy` uses, in
 * one place: the renderers and the consistency tests read them from here.
 */
import type { DeployConfig } from './config.ts';

export const PART_OF = 'baton';
/** Pods that talk to Redis carry this label; Redis's NetworkPolicy admits them. */
export const REDIS_CLIENT_LABEL = 'baton.dev/redis-client';
/** Pods that talk to the runtime database (through the Pooler) carry this label. */
export const DB_CLIENT_LABEL = 'baton.dev/db-client';
/** Tool servers that reach the side-effect ledger database carry this label. */
export const LEDGER_CLIENT_LABEL = 'baton.dev/ledger-client';
/** Prometheus `/metrics` of every Baton process (BATON_METRICS_PORT), never on the API's public port. */
export const METRICS_PORT = 9464;
/** `tools.baton.dev/<server>: "true"` marks pods that may reach that tool server. */
export const toolAccessLabel = (server: string) => `tools.baton.dev/${server}`;

export const ROLES = ['api', 'housekeeper', 'migrate', 'dispatcher', 'worker', 'function', 'tool', 'redis'] as const;
export type Role = (typeof ROLES)[number];

export function names(c: DeployConfig) {
  const n = c.name;
  const cluster = `${n}-db`;
  const svc = (service: string) => `${service}.${c.namespace}.svc.${c.clusterDomain}`;
  return {
    namespace: c.namespace,
    cluster,
    /** CNPG creates `<cluster>-app` with keys username, password, dbname, host, port, uri. */
    appSecret: `${cluster}-app`,
    /** The Pooler's Service has the Pooler's name. */
    pooler: `${cluster}-pooler-rw`,
    redis: `${n}-redis`,
    redisSecret: `${n}-redis`,
    redisPasswordKey: 'password',
    triggerAuth: `${n}-redis`,
    /** Ed25519 private key that mints capability tokens: only pods that run steps mount it. */
    signingSecret: `${n}-tool-signing-key`,
    signingKey: 'private.pem',
    /** Its public half, for the tool servers. */
    verifySecret: `${n}-tool-public-key`,
    verifyKey: 'public.pem',
    /** Shared by dispatchers and function pods (BATON_INVOKE_TOKEN); `baton deploy` creates it. */
    invokeSecret: `${n}-invoke`,
    invokeKey: 'token',
    /** The tool servers' ledger: a CNPG cluster of their own; CNPG writes `<cluster>-app` (key `uri`). */
    ledgerCluster: `${n}-tools-db`,
    ledgerSecret: `${n}-tools-db-app`,
    api: `${n}-api`,
    housekeeper: `${n}-housekeeper`,
    migrate: `${n}-migrate`,
    serviceAccount: (role: Role) => `${n}-${role}`,
    knativeService: (fn: string) => fn,
    dispatcher: (fn: string) => `${fn}-dispatcher`,
    worker: (fn: string) => `${fn}-worker`,
    tool: (server: string) => `${n}-tool-${server}`,
    /** NetworkPolicy names: one per tool server, one per role, one per database tier. */
    toolPolicy: (server: string) => `${n}-tool-${server}`,
    rolePolicy: (role: Role) => `${n}-${role}`,
    redisPolicy: `${n}-redis`,
    host: svc,
    /** The function's main route (cluster-local). */
    functionUrl: (fn: string) => `http://${svc(fn)}/invoke`,
    /** Template of a revision's tagged route; the dispatcher fills `{tag}` (scripts/lib/revision-tag.ts). */
    functionPinnedUrl: (fn: string) => `http://{tag}-${svc(fn)}/invoke`,
    toolUrl: (server: string) => `http://${svc(`${n}-tool-${server}`)}/mcp`,
    redisAddress: () => ('external' in c.redis ? c.redis.external.address : `${svc(`${n}-redis`)}:6379`),
  };
}

export type Names = ReturnType<typeof names>;

/** BATON_TOOL_<NAME>_URL, the inverse of runtime/config.ts toolUrlsFrom. */
export function toolUrlEnv(server: string): string {
  return `BATON_TOOL_${server.toUpperCase().replaceAll('-', '_')}_URL`;
}

export function labels(c: DeployConfig, component: string, role: Role): Record<string, string> {
  return {
    'app.kubernetes.io/component': role,
    'app.kubernetes.io/instance': c.name,
    'app.kubernetes.io/name': component,
    'app.kubernetes.io/part-of': PART_OF,
  };
}

/** The subset of labels that selects one component's pods (stable across releases). */
export function selector(c: DeployConfig, component: string): Record<string, string> {
  return { 'app.kubernetes.io/instance': c.name, 'app.kubernetes.io/name': component };
}
