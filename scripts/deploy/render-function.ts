/**
 * Per function. Knative Serving cannot be a KEDA target (its autoscaler owns the
 * Deployment), and KEDA's redis-streams scaler wakes from zero only on consumer-group
 * lag, so the pieces split like this:
 *
 *   knative mode: a Knative Service runs the function's invoke app (scales on in-flight
 *     requests, to zero); a dispatcher Deployment drains the function's stream and
 *     POSTs each step to it; KEDA scales the dispatcher.
 *   worker mode:  a worker Deployment runs the steps in-process; KEDA scales it.
 *
 * The ScaledObject has two triggers on the function's stream and group, the very
 * names the runtime uses (runtime/queue/names.ts): `lagCount` (backlog, wakes from
 * zero) and `pendingEntriesCount` (steps in flight, so no scale-in mid-step).
 *
 * Knative revisions are named `<function>-<hash of the template>`, and each one is
 * routed under the tag `r-<hash>`, so a run's later steps can reach the revision that
 * ran its first step (scripts/lib/revision-tag.ts). `retain` keeps older revisions'
 * tags routable until no live run needs them (README "Run on Kubernetes" → "Revisions").
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { CONSUMER_GROUP, streamKey } from '../../runtime/queue/names.ts';
import { revisionTag } from '../lib/revision-tag.ts';
import { stepBudget } from '../lib/step-budget.ts';
import type { DeployConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { DB_CLIENT_LABEL, METRICS_PORT, REDIS_CLIENT_LABEL, names, selector, toolAccessLabel } from './names.ts';
import type { FunctionPlan } from './plan.ts';
import { commonEnv, databaseEnv, invokeEnv, metricsEnv, redisEnv, scrapeAnnotations, stepEnv, terminationGrace } from './render-env.ts';
import { baseContainer, podSecurity, resources, scratch } from './render-security.ts';
import { contentHash } from './stable.ts';

export const FUNCTION_PORT = 8080;
/** How often KEDA reads the stream: the longest a step waits when its function is at zero. */
export const POLLING_INTERVAL_S = 5;
export const COOLDOWN_S = 120;
/**
 * Scale-in: the HPA removes at most one pod a minute, after five minutes of lower
 * demand. A removed pod drains its steps (grace ≥ longest step), so scale-in is slow
 * by design: a burst that ends does not send half the pods into a long drain at once.
 */
export const SCALE_DOWN = { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] };

export interface FunctionRender {
  /** Older revisions of each function that live runs may still need (from the cluster). */
  retain?: Readonly<Record<string, readonly string[]>>;
}

const toolLabels = (f: FunctionPlan) => Object.fromEntries(f.tools.map((t) => [toolAccessLabel(t), 'true']));
const clientLabels = { [REDIS_CLIENT_LABEL]: 'true', [DB_CLIENT_LABEL]: 'true' };
const extraEnv = (f: FunctionPlan): IEnvVar[] =>
  Object.keys(f.env ?? {})
    .sort()
    .map((name) => ({ name, value: f.env![name] }));

export function renderFunction(c: DeployConfig, f: FunctionPlan, opts: FunctionRender = {}): Manifest[] {
  return c.mode === 'knative' ? renderKnative(c, f, opts) : renderWorker(c, f);
}

function queueEnv(c: DeployConfig, f: FunctionPlan, drainS: number): IEnvVar[] {
  return [...databaseEnv(c), ...redisEnv(c), ...commonEnv(c, drainS), ...metricsEnv(), { name: 'BATON_CONCURRENCY', value: String(f.concurrency) }];
}

function renderKnative(c: DeployConfig, f: FunctionPlan, opts: FunctionRender): Manifest[] {
  const n = names(c);
  const ksvc = n.knativeService(f.name);
  const budget = stepBudget(f.longestStepMs);
  const tmp = scratch();
  const template = {
    metadata: {
      labels: { ...meta(c, ksvc, 'function').labels, ...clientLabels, ...toolLabels(f) },
      annotations: {
        'autoscaling.knative.dev/min-scale': '0',
        'autoscaling.knative.dev/max-scale': String(f.maxReplicas),
        ...scrapeAnnotations(),
      },
    },
    spec: {
      serviceAccountName: n.serviceAccount('function'),
      automountServiceAccountToken: false,
      containerConcurrency: f.concurrency,
      // Knative also makes this the pods' termination grace period.
      timeoutSeconds: budget.knativeTimeoutS,
      containers: [
        {
          ...baseContainer(c, 'function', ['worker', '--serve', f.name]),
          // Knative sets PORT from the container port and K_REVISION, which runs record.
          // BATON_CONCURRENCY = containerConcurrency sizes the pod's database pool to its requests.
          env: [...queueEnv(c, f, budget.workerDrainS), ...invokeEnv(c), ...stepEnv(c, f.tools), ...extraEnv(f)],
          // Knative allows one container port, the serving one: metrics are scraped by annotation.
          ports: [{ containerPort: FUNCTION_PORT }],
          // No periodSeconds: only then does Knative probe aggressively while a pod starts (cold starts).
          readinessProbe: { httpGet: { path: '/healthz' } },
          resources: resources(c, 'function', f.resources),
          volumeMounts: tmp.mounts,
        },
      ],
      volumes: tmp.volumes,
    },
  };
  const revision = `${ksvc}-${contentHash(template)}`;
  const retained = [...new Set(opts.retain?.[f.name] ?? [])].filter((r) => r !== revision).sort();
  const service: Manifest = {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: {
      ...meta(c, ksvc, 'function'),
      // Only the dispatcher calls it: no public route.
      labels: { ...meta(c, ksvc, 'function').labels, 'networking.knative.dev/visibility': 'cluster-local' },
    },
    spec: {
      template: { ...template, metadata: { ...template.metadata, name: revision } },
      traffic: [
        { revisionName: revision, percent: 100, tag: revisionTag(revision) },
        ...retained.map((r) => ({ revisionName: r, percent: 0, tag: revisionTag(r) })),
      ],
    },
  };
  const dispatcherName = n.dispatcher(f.name);
  const args = ['worker', '--dispatch', n.functionUrl(f.name), '--pinned', n.functionPinnedUrl(f.name), '--timeout-ms', String(budget.dispatchTimeoutS * 1000), f.name];
  const dispatcher = scaledDeployment(c, f, dispatcherName, 'dispatcher', budget.dispatcherDrainS, {
    ...baseContainer(c, 'dispatcher', args),
    env: [...queueEnv(c, f, budget.dispatcherDrainS), ...invokeEnv(c), ...extraEnv(f)],
    resources: resources(c, 'dispatcher'),
  });
  return [service, dispatcher, scaledObject(c, f, dispatcherName)];
}

function renderWorker(c: DeployConfig, f: FunctionPlan): Manifest[] {
  const n = names(c);
  const name = n.worker(f.name);
  const budget = stepBudget(f.longestStepMs);
  const worker = scaledDeployment(c, f, name, 'worker', budget.workerDrainS, {
    ...baseContainer(c, 'worker', ['worker', f.name]),
    env: [...queueEnv(c, f, budget.workerDrainS), ...stepEnv(c, f.tools), ...extraEnv(f)],
    resources: resources(c, 'worker', f.resources),
  });
  return [worker, scaledObject(c, f, name)];
}

/** A Deployment KEDA scales (no `replicas`): drains for `drainS` on SIGTERM, Kubernetes waits a little longer. */
function scaledDeployment(
  c: DeployConfig,
  f: FunctionPlan,
  name: string,
  role: 'dispatcher' | 'worker',
  drainS: number,
  container: IContainer,
): Manifest {
  const n = names(c);
  const tmp = scratch();
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, name, role),
    spec: {
      selector: { matchLabels: selector(c, name) },
      template: {
        metadata: { labels: { ...meta(c, name, role).labels, ...clientLabels, ...(role === 'worker' ? toolLabels(f) : {}) }, annotations: scrapeAnnotations() },
        spec: {
          serviceAccountName: n.serviceAccount(role),
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          terminationGracePeriodSeconds: terminationGrace(c, drainS),
          containers: [{ ...container, ports: [{ name: 'metrics', containerPort: METRICS_PORT }], volumeMounts: tmp.mounts }],
          volumes: tmp.volumes,
        },
      },
    },
  };
  return deployment as Manifest;
}

/** KEDA trigger metadata is map[string]string: every value is a string. */
export function scaledObject(c: DeployConfig, f: FunctionPlan, target: string): Manifest {
  const n = names(c);
  const base: Record<string, string> = {
    address: n.redisAddress(),
    stream: streamKey(c.redisPrefix, f.name),
    consumerGroup: CONSUMER_GROUP,
  };
  if ('external' in c.redis) {
    base.databaseIndex = String(c.redis.external.database);
    if (c.redis.external.tls) base.enableTLS = 'true';
  }
  const auth = { name: n.triggerAuth };
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: meta(c, target, 'autoscaling'),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target },
      minReplicaCount: f.minReplicas,
      maxReplicaCount: f.maxReplicas,
      pollingInterval: POLLING_INTERVAL_S,
      cooldownPeriod: COOLDOWN_S,
      advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: SCALE_DOWN } } },
      triggers: [
        // Backlog: the only signal that wakes a Deployment from zero.
        { type: 'redis-streams', name: 'backlog', metadata: { ...base, lagCount: String(f.lagCount), activationLagCount: '0' }, authenticationRef: auth },
        // In flight: keeps replicas while steps run (lag is 0 once a step is picked up).
        { type: 'redis-streams', name: 'in-flight', metadata: { ...base, pendingEntriesCount: String(f.pendingEntriesCount) }, authenticationRef: auth },
      ],
    },
  };
}
