/**
 * The always-on part: the HTTP API (a Deployment, never scaled to zero, since a 202
 * must come in milliseconds), the housekeeper (promotes delayed wake-ups and sweeps
 * stale runs while every worker sleeps at zero), and the migration Job that
 * `baton deploy` runs to completion before any new code serves. The Job's name carries
 * a hash of its template: a Job's template is immutable, and a new image is a new Job.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IJob } from 'kubernetes-models/batch/v1/Job';
import type { IService } from 'kubernetes-models/v1/Service';
import type { DeployConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { DB_CLIENT_LABEL, METRICS_PORT, REDIS_CLIENT_LABEL, names, selector } from './names.ts';
import { commonEnv, databaseEnv, metricsEnv, redisEnv, scrapeAnnotations, terminationGrace } from './render-env.ts';
import { baseContainer, podSecurity, resources, scratch } from './render-security.ts';
import { contentHash } from './stable.ts';

export const API_PORT = 8080;

export function renderApi(c: DeployConfig): Manifest[] {
  const n = names(c);
  const tmp = scratch();
  const api: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, n.api, 'api'),
    spec: {
      replicas: c.api.replicas,
      selector: { matchLabels: selector(c, n.api) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: { ...meta(c, n.api, 'api').labels, [REDIS_CLIENT_LABEL]: 'true', [DB_CLIENT_LABEL]: 'true' }, annotations: scrapeAnnotations() },
        spec: {
          serviceAccountName: n.serviceAccount('api'),
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          terminationGracePeriodSeconds: terminationGrace(c),
          containers: [
            {
              ...baseContainer(c, 'api', ['api']),
              env: [
                ...databaseEnv(c),
                ...redisEnv(c),
                ...commonEnv(c),
                ...metricsEnv(),
                { name: 'PORT', value: String(API_PORT) },
                { name: 'HOST', value: '0.0.0.0' },
                { name: 'BATON_AUTH', value: c.api.auth ? 'on' : 'off' },
              ],
              ports: [
                { name: 'http', containerPort: API_PORT },
                { name: 'metrics', containerPort: METRICS_PORT },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 3 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
              resources: resources(c, 'api', c.api.resources),
              volumeMounts: tmp.mounts,
            },
          ],
          volumes: tmp.volumes,
        },
      },
    },
  };
  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(c, n.api, 'api'),
    spec: { selector: selector(c, n.api), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
  const housekeeper: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, n.housekeeper, 'housekeeper'),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector(c, n.housekeeper) },
      template: {
        metadata: {
          labels: { ...meta(c, n.housekeeper, 'housekeeper').labels, [REDIS_CLIENT_LABEL]: 'true', [DB_CLIENT_LABEL]: 'true' },
          annotations: scrapeAnnotations(),
        },
        spec: {
          serviceAccountName: n.serviceAccount('housekeeper'),
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          terminationGracePeriodSeconds: terminationGrace(c),
          containers: [
            {
              ...baseContainer(c, 'housekeeper', ['worker', '--housekeeping']),
              env: [...databaseEnv(c), ...redisEnv(c), ...commonEnv(c), ...metricsEnv()],
              ports: [{ name: 'metrics', containerPort: METRICS_PORT }],
              resources: resources(c, 'housekeeper'),
              volumeMounts: tmp.mounts,
            },
          ],
          volumes: tmp.volumes,
        },
      },
    },
  };
  return [api, service, housekeeper] as Manifest[];
}

export function renderMigrateJob(c: DeployConfig): Manifest {
  const n = names(c);
  const tmp = scratch();
  const template: NonNullable<IJob['spec']>['template'] = {
    metadata: { labels: { ...meta(c, n.migrate, 'migrate').labels, [DB_CLIENT_LABEL]: 'true' } },
    spec: {
      serviceAccountName: n.serviceAccount('migrate'),
      automountServiceAccountToken: false,
      securityContext: podSecurity(),
      restartPolicy: 'OnFailure',
      containers: [
        {
          ...baseContainer(c, 'migrate', ['migrate']),
          env: [...databaseEnv(c), ...commonEnv(c)],
          resources: resources(c, 'migrate'),
          volumeMounts: tmp.mounts,
        },
      ],
      volumes: tmp.volumes,
    },
  };
  const name = `${n.migrate}-${contentHash(template)}`;
  const job: IJob = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(c, name, 'migrate'),
    spec: { backoffLimit: 4, activeDeadlineSeconds: 900, ttlSecondsAfterFinished: 86_400, template },
  };
  return job as Manifest;
}
