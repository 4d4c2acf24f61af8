/**
 * Renders the whole platform, in apply order: each phase's objects exist (and are
 * ready) before the next phase is applied. Pure: same plan, same bytes.
 *
 *   namespace → accounts → network → database (CNPG) → redis → migrate (Job) → tools → api → functions
 *
 * NetworkPolicies come before any pod they protect exists.
 */
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { Manifest } from './manifest.ts';
import { PART_OF, ROLES, type Role } from './names.ts';
import type { DeployPlan } from './plan.ts';
import { renderApi, renderMigrateJob } from './render-api.ts';
import { renderDatabase } from './render-database.ts';
import { type FunctionRender, renderFunction } from './render-function.ts';
import { renderNetwork } from './render-network.ts';
import { renderRedis } from './render-redis.ts';
import { serviceAccount } from './render-security.ts';
import { renderTool } from './render-tools.ts';
import { sortKeys } from './stable.ts';

export const PHASES = ['namespace', 'accounts', 'network', 'database', 'redis', 'migrate', 'tools', 'api', 'functions'] as const;
export type Phase = (typeof PHASES)[number];

export interface Rendered {
  phases: Array<{ phase: Phase; objects: Manifest[] }>;
}

export function render(plan: DeployPlan, opts: FunctionRender = {}): Rendered {
  const c = plan.config;
  const namespace: INamespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: c.namespace, labels: { 'app.kubernetes.io/part-of': PART_OF } },
  };
  const roles = new Set<Role>(['api', 'housekeeper', 'migrate', 'tool']);
  if ('embedded' in c.redis) roles.add('redis');
  if (plan.functions.length) for (const r of c.mode === 'knative' ? (['function', 'dispatcher'] as const) : (['worker'] as const)) roles.add(r);
  const phases: Rendered['phases'] = [
    { phase: 'namespace', objects: [namespace as Manifest] },
    { phase: 'accounts', objects: ROLES.filter((r) => roles.has(r)).map((r) => serviceAccount(c, r) as Manifest) },
    { phase: 'network', objects: renderNetwork(plan) },
    { phase: 'database', objects: renderDatabase(c) },
    { phase: 'redis', objects: renderRedis(c).filter((o) => o.kind !== 'ServiceAccount') },
    { phase: 'migrate', objects: [renderMigrateJob(c)] },
    { phase: 'tools', objects: Object.keys(c.tools).sort().flatMap((server) => renderTool(c, server, c.tools[server])) },
    { phase: 'api', objects: renderApi(c) },
    { phase: 'functions', objects: plan.functions.flatMap((f) => renderFunction(c, f, opts)) },
  ];
  return { phases: phases.map((p) => ({ phase: p.phase, objects: p.objects.map((o) => sortKeys(o)) })) };
}

export function allObjects(r: Rendered): Manifest[] {
  return r.phases.flatMap((p) => p.objects);
}
