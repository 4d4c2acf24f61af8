/**
 * What every Baton pod shares: its own ServiceAccount without an API token (no Baton
 * process talks to the Kubernetes API), a non-root user, a read-only root filesystem
 * with only /tmp writable, no capabilities, the runtime's seccomp profile, and
 * resource requests and limits.
 */
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { DeployConfig, ResourcesConfig } from './config.ts';
import { type Role, labels, names } from './names.ts';

/** The `node` user of the official Node.js images (the Dockerfile runs as it). */
export const APP_UID = 1000;

export function serviceAccount(c: DeployConfig, role: Role): IServiceAccount {
  const name = names(c).serviceAccount(role);
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace: c.namespace, labels: labels(c, name, role) },
    automountServiceAccountToken: false,
  };
}

export function podSecurity(uid = APP_UID): IPodSecurityContext {
  return { runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid, seccompProfile: { type: 'RuntimeDefault' } };
}

export function containerSecurity(uid = APP_UID): ISecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

const DEFAULT_RESOURCES: Record<Role, Required<ResourcesConfig>> = {
  api: { requests: { cpu: '100m', memory: '192Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  housekeeper: { requests: { cpu: '20m', memory: '128Mi' }, limits: { cpu: '250m', memory: '256Mi' } },
  migrate: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
  dispatcher: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
  worker: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } },
  function: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '1Gi' } },
  tool: { requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
  redis: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
};

/** Role defaults, then `resources.<role>`, then the most specific override (a function's or a tool's). */
export function resources(c: DeployConfig, role: Role, override?: ResourcesConfig): IResourceRequirements {
  const byRole = (c.resources as Record<string, ResourcesConfig | undefined>)[role];
  const base = DEFAULT_RESOURCES[role];
  return {
    requests: { ...base.requests, ...byRole?.requests, ...override?.requests },
    limits: { ...base.limits, ...byRole?.limits, ...override?.limits },
  };
}

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** Bytes of a memory quantity such as "512Mi" or "1G" (the config admits only these forms). */
export function bytesOf(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(quantity);
  if (!m) throw new Error(`"${quantity}" is not a memory quantity`);
  return Math.floor(Number(m[1]) * UNITS[m[2] ?? '']);
}

/** The read-only root filesystem leaves /tmp (and any `dirs`) as small emptyDirs. */
export function scratch(dirs: readonly string[] = []): { volumes: IVolume[]; mounts: IVolumeMount[] } {
  const all = ['/tmp', ...dirs];
  return {
    volumes: all.map((_, i) => ({ name: i === 0 ? 'tmp' : `data-${i}`, emptyDir: { sizeLimit: '256Mi' } })),
    mounts: all.map((dir, i) => ({ name: i === 0 ? 'tmp' : `data-${i}`, mountPath: dir })),
  };
}

/** Fields every Baton container shares. */
export function baseContainer(c: DeployConfig, name: string, args: string[]): IContainer {
  return { name, image: c.image, imagePullPolicy: 'IfNotPresent', args, securityContext: containerSecurity() };
}
