/** The shape every rendered object shares, and its metadata. */
import type { DeployConfig } from './config.ts';
import { type Role, labels } from './names.ts';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function meta(c: DeployConfig, name: string, role: Role | 'database' | 'autoscaling' | 'namespace') {
  return { name, namespace: c.namespace, labels: labels(c, name, role as Role) };
}
