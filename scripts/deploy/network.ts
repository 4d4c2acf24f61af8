/**
 * Which pods the platform runs, and what its NetworkPolicies let reach them, worked
 * out from the rendered objects with Kubernetes' own semantics: a pod that some
 * Ingress policy selects is isolated, and then admits only what one of those
 * policies' rules allows (peer by pod labels, namespace, or both; port by number or
 * by the container port's name). Pods that operators create (CloudNativePG's
 * instances and PgBouncer) are counted with the labels their operator gives them.
 */
import { type PodView, podsOf, secretsOf } from './check-references.ts';
import type { Manifest } from './manifest.ts';

export interface PlatformPod {
  object: string;
  component: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Container port names → numbers. */
  ports: Record<string, number>;
  holdsSecret: boolean;
}

export interface Source {
  namespace: string;
  labels: Record<string, string>;
}

type Selector = { matchLabels?: Record<string, string> };
interface Peer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
}
interface Rule {
  from?: Peer[];
  ports?: Array<{ port?: number | string; protocol?: string }>;
}
interface PolicySpec {
  podSelector: Selector;
  policyTypes?: string[];
  ingress?: Rule[];
}

const matches = (selector: Selector | undefined, labels: Record<string, string>) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

function fromTemplate(pod: PodView): PlatformPod {
  const ports: Record<string, number> = {};
  for (const c of pod.spec.containers ?? []) for (const p of (c as { ports?: Array<{ name?: string; containerPort: number }> }).ports ?? []) if (p.name) ports[p.name] = p.containerPort;
  return { object: pod.object, component: pod.component, labels: pod.labels, annotations: pod.annotations, ports, holdsSecret: secretsOf(pod).size > 0 };
}

/** CNPG labels its pods `cnpg.io/cluster` and `cnpg.io/podRole` (instance | pooler); poolers also `cnpg.io/poolerName`. */
function fromOperator(o: Manifest): PlatformPod | null {
  const holdsSecret = true; // superuser, replication and TLS material; PgBouncer's auth query credentials
  if (o.kind === 'Cluster') {
    const labels = { 'cnpg.io/cluster': o.metadata.name, 'cnpg.io/podRole': 'instance' };
    return { object: `Cluster/${o.metadata.name}`, component: 'database', labels, annotations: {}, ports: { postgresql: 5432, metrics: 9187, status: 8000 }, holdsSecret };
  }
  if (o.kind === 'Pooler') {
    const cluster = (o.spec as { cluster: { name: string } }).cluster.name;
    const labels = { 'cnpg.io/cluster': cluster, 'cnpg.io/poolerName': o.metadata.name, 'cnpg.io/podRole': 'pooler' };
    return { object: `Pooler/${o.metadata.name}`, component: 'pooler', labels, annotations: {}, ports: { pgbouncer: 5432, metrics: 9127 }, holdsSecret };
  }
  return null;
}

/** Every pod the platform runs: from pod templates, and the ones operators create. */
export function platformPods(objects: readonly Manifest[]): PlatformPod[] {
  return [...podsOf(objects).map(fromTemplate), ...objects.map(fromOperator).filter((p) => p !== null)];
}

const policies = (objects: readonly Manifest[]) =>
  objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => ({ name: o.metadata.name, spec: o.spec as PolicySpec }));

const isIngress = (spec: PolicySpec) => (spec.policyTypes ?? ['Ingress']).includes('Ingress');

/** Names of the Ingress policies that select the pod (it is isolated when there is one). */
export function selectedBy(objects: readonly Manifest[], pod: PlatformPod): string[] {
  return policies(objects)
    .filter((p) => isIngress(p.spec) && matches(p.spec.podSelector, pod.labels))
    .map((p) => p.name);
}

function peerAdmits(peer: Peer, from: Source, podNamespace: string): boolean {
  const nsLabels = { 'kubernetes.io/metadata.name': from.namespace };
  if (peer.namespaceSelector) return matches(peer.namespaceSelector, nsLabels) && (!peer.podSelector || matches(peer.podSelector, from.labels));
  if (peer.podSelector) return from.namespace === podNamespace && matches(peer.podSelector, from.labels);
  return false;
}

/** Whether a connection from `from` to the pod's `port` is let in (the pod lives in `namespace`). */
export function admits(objects: readonly Manifest[], pod: PlatformPod, from: Source, port: number, namespace?: string): boolean {
  const podNamespace = namespace ?? objects.find((o) => o.kind === 'Namespace')?.metadata.name ?? '';
  const selecting = policies(objects).filter((p) => isIngress(p.spec) && matches(p.spec.podSelector, pod.labels));
  if (!selecting.length) return true;
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some((rule) => {
      const peerOk = !rule.from?.length || rule.from.some((peer) => peerAdmits(peer, from, podNamespace));
      const portOk = !rule.ports?.length || rule.ports.some((r) => r.port === undefined || (typeof r.port === 'number' ? r.port : pod.ports[r.port]) === port);
      return peerOk && portOk;
    }),
  );
}
