/**
 * Redis: it carries wake-ups only (PostgreSQL is the truth; the sweeper re-publishes
 * what Redis loses), so the embedded one keeps no persistence. Password from a Secret
 * (`baton deploy` creates it when missing). Its NetworkPolicy (render-network.ts)
 * admits the pods labelled as Redis clients and the KEDA operator.
 *
 * Memory: `--maxmemory` is 80% of the container's limit with `noeviction`, so a full
 * Redis answers OOM to writes (publishers retry; nothing is silently dropped) instead
 * of growing until the kernel kills it and every stream, group and pending entry with
 * it. The other 20% is for replication buffers, fragmentation and client buffers.
 * With `redis.external`, only the TriggerAuthentication is rendered.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import type { DeployConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { names, selector } from './names.ts';
import { bytesOf, containerSecurity, podSecurity, resources, scratch, serviceAccount } from './render-security.ts';

/** uid of the `redis` user in the official image. */
const REDIS_UID = 999;
/** Share of the container's memory limit Redis may use for data. */
export const REDIS_MEMORY_SHARE = 0.8;

export function renderTriggerAuth(c: DeployConfig): Manifest {
  const n = names(c);
  const ref = 'external' in c.redis ? c.redis.external.passwordSecret : { name: n.redisSecret, key: n.redisPasswordKey };
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'TriggerAuthentication',
    metadata: meta(c, n.triggerAuth, 'autoscaling'),
    spec: { secretTargetRef: [{ parameter: 'password', name: ref.name, key: ref.key }] },
  };
}

export function renderRedis(c: DeployConfig): Manifest[] {
  if (!('embedded' in c.redis)) return [renderTriggerAuth(c)];
  const n = names(c);
  const r = c.redis.embedded;
  const data = scratch(['/data']);
  const limits = resources(c, 'redis', r.resources);
  const maxmemory = Math.floor(bytesOf(String(limits.limits?.memory)) * REDIS_MEMORY_SHARE);
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, n.redis, 'redis'),
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selector(c, n.redis) },
      template: {
        metadata: { labels: meta(c, n.redis, 'redis').labels },
        spec: {
          serviceAccountName: n.serviceAccount('redis'),
          automountServiceAccountToken: false,
          securityContext: podSecurity(REDIS_UID),
          containers: [
            {
              name: 'redis',
              image: r.image,
              imagePullPolicy: 'IfNotPresent',
              env: [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: n.redisSecret, key: n.redisPasswordKey } } }],
              // Wake-ups only: no snapshots, no AOF; a memory cap under the limit, and never evict.
              args: [
                'redis-server',
                '--requirepass',
                '$(REDIS_PASSWORD)',
                '--save',
                '',
                '--appendonly',
                'no',
                '--dir',
                '/data',
                '--maxmemory',
                String(maxmemory),
                '--maxmemory-policy',
                'noeviction',
              ],
              ports: [{ name: 'redis', containerPort: 6379 }],
              readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10, failureThreshold: 6 },
              resources: limits,
              securityContext: containerSecurity(REDIS_UID),
              volumeMounts: data.mounts,
            },
          ],
          volumes: data.volumes,
        },
      },
    },
  };
  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(c, n.redis, 'redis'),
    spec: { selector: selector(c, n.redis), ports: [{ name: 'redis', port: 6379, targetPort: 'redis' }] },
  };
  return [serviceAccount(c, 'redis'), deployment, service, renderTriggerAuth(c)] as Manifest[];
}
