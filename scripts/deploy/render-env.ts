/**
 * Environment of Baton's pods. Credentials only ever arrive as `secretKeyRef`s
 * (never rendered inline); URLs that carry them are assembled in the pod with
 * Kubernetes' `$(VAR)` expansion, which reads variables defined earlier in the list.
 *
 *   DATABASE_URL → the CNPG Pooler's Service (PgBouncer, transaction mode), from the
 *   `<cluster>-app` Secret's username, password and dbname. The Secret's own `uri`
 *   points at the cluster, not at the pooler, so it is not used.
 *   REDIS_URL    → the Redis Service, password from its Secret.
 */
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { EXIT_MARGIN_S } from '../lib/step-budget.ts';
import type { DeployConfig } from './config.ts';
import { METRICS_PORT, names, toolUrlEnv } from './names.ts';

const secretRef = (name: string, key: string, optional?: boolean): IEnvVar['valueFrom'] => ({
  secretKeyRef: optional ? { name, key, optional } : { name, key },
});

export function databaseEnv(c: DeployConfig): IEnvVar[] {
  const n = names(c);
  return [
    { name: 'PGUSER', valueFrom: secretRef(n.appSecret, 'username') },
    { name: 'PGPASSWORD', valueFrom: secretRef(n.appSecret, 'password') },
    { name: 'PGDATABASE', valueFrom: secretRef(n.appSecret, 'dbname') },
    { name: 'DATABASE_URL', value: `postgresql://$(PGUSER):$(PGPASSWORD)@${n.pooler}:5432/$(PGDATABASE)` },
  ];
}

export function redisEnv(c: DeployConfig): IEnvVar[] {
  const n = names(c);
  if ('external' in c.redis) {
    const r = c.redis.external;
    return [
      { name: 'REDIS_PASSWORD', valueFrom: secretRef(r.passwordSecret.name, r.passwordSecret.key) },
      { name: 'REDIS_URL', value: `${r.tls ? 'rediss' : 'redis'}://:$(REDIS_PASSWORD)@${r.address}/${r.database}` },
      { name: 'BATON_REDIS_PREFIX', value: c.redisPrefix },
    ];
  }
  return [
    { name: 'REDIS_PASSWORD', valueFrom: secretRef(n.redisSecret, n.redisPasswordKey) },
    { name: 'REDIS_URL', value: `redis://:$(REDIS_PASSWORD)@${n.redis}:6379/0` },
    { name: 'BATON_REDIS_PREFIX', value: c.redisPrefix },
  ];
}

/** `drainS`: how long the process drains on SIGTERM (at least the configured drainSeconds). */
export function commonEnv(c: DeployConfig, drainS = c.drainSeconds): IEnvVar[] {
  return [
    { name: 'BATON_LOG_LEVEL', value: c.logLevel },
    { name: 'BATON_GRACE_MS', value: String(Math.max(c.drainSeconds, drainS) * 1000) },
    ...tracingEnv(c),
  ];
}

/**
 * Where spans go (config `tracing`), for Baton's pods and the tool servers; nothing
 * without it. Service names come from each process's role (baton-api, baton-worker,
 * baton-tool-<name>); the namespace tells deployments apart in one collector.
 */
export function tracingEnv(c: DeployConfig): IEnvVar[] {
  if (!c.tracing) return [];
  return [
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: c.tracing.endpoint },
    { name: 'OTEL_TRACES_SAMPLER', value: 'parentbased_traceidratio' },
    { name: 'OTEL_TRACES_SAMPLER_ARG', value: String(c.tracing.sampleRatio) },
    { name: 'OTEL_RESOURCE_ATTRIBUTES', value: `k8s.namespace.name=${c.namespace},service.namespace=${c.name}` },
  ];
}

/** Seconds Kubernetes waits after SIGTERM: the drain plus time to release leases and exit. */
export const terminationGrace = (c: DeployConfig, drainS = c.drainSeconds) => Math.max(c.drainSeconds, drainS) + EXIT_MARGIN_S;

/** `/metrics` on its own port, reachable from the pod network (the policies admit only the scraper). */
export function metricsEnv(): IEnvVar[] {
  return [
    { name: 'BATON_METRICS_PORT', value: String(METRICS_PORT) },
    { name: 'BATON_METRICS_HOST', value: '0.0.0.0' },
  ];
}

/** What annotation-based Prometheus scraping (the `kubernetes-pods` job) reads. */
export function scrapeAnnotations(): Record<string, string> {
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' };
}

/** The credential dispatchers send and function pods verify (knative mode). */
export function invokeEnv(c: DeployConfig): IEnvVar[] {
  const n = names(c);
  return [{ name: 'BATON_INVOKE_TOKEN', valueFrom: secretRef(n.invokeSecret, n.invokeKey) }];
}

/** Only pods that run steps: the key that mints capability tokens, and where the tool servers are. */
export function stepEnv(c: DeployConfig, tools: readonly string[]): IEnvVar[] {
  const n = names(c);
  const env: IEnvVar[] = [{ name: 'BATON_TOOL_SIGNING_KEY', valueFrom: secretRef(n.signingSecret, n.signingKey) }];
  for (const server of tools) env.push({ name: toolUrlEnv(server), value: n.toolUrl(server) });
  if (c.llm.secret) {
    env.push(
      { name: 'OPENAI_API_KEY', valueFrom: secretRef(c.llm.secret, 'OPENAI_API_KEY') },
      { name: 'OPENAI_BASE_URL', valueFrom: secretRef(c.llm.secret, 'OPENAI_BASE_URL', true) },
    );
  }
  if (c.llm.model) env.push({ name: 'BATON_MODEL', value: c.llm.model });
  return env;
}
