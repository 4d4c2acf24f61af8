/**
 * Who may connect to whom: one Ingress NetworkPolicy for every pod the platform runs,
 * all in one place, applied before any of those pods exists. Every pod that holds a
 * credential is isolated (scripts/deploy/network.ts proves it on the rendered objects):
 *
 *   API                  its HTTP port from anywhere (ingress controllers live elsewhere)
 *   housekeeper, migrate, nothing: they only connect out
 *   dispatcher, worker
 *   function (Knative)   only Knative's namespaces (activator, autoscaler, gateway):
 *                        the dispatcher reaches them through the gateway, never directly
 *   tool server          only pods of functions that declared it (label tools.baton.dev/<s>)
 *   Redis                Redis clients and the KEDA operator
 *   Pooler (PgBouncer)   pods labelled as database clients
 *   database instances   their own cluster's pods (pooler, replicas) and the CNPG operator
 *   ledger instances     their own cluster's pods, tool servers with a ledger, the operator
 *
 * and, on the metrics port only, the monitoring namespace's Prometheus (none when
 * `monitoringNamespace` is null). Egress is left open: DNS, the LLM endpoint and
 * GitHub are outside, and the secrets are what the ingress rules protect.
 */
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { INetworkPolicyIngressRule } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyIngressRule';
import type { DeployConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { DB_CLIENT_LABEL, LEDGER_CLIENT_LABEL, METRICS_PORT, REDIS_CLIENT_LABEL, type Role, names, selector, toolAccessLabel } from './names.ts';
import type { DeployPlan } from './plan.ts';
import { API_PORT } from './render-api.ts';
import { TOOL_PORT } from './render-tools.ts';

type Peer = NonNullable<INetworkPolicyIngressRule['from']>[number];

const tcp = (...ports: number[]) => ports.map((port) => ({ protocol: 'TCP' as const, port }));
const inNamespace = (namespace: string): Peer => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } });
const podsLabelled = (labels: Record<string, string>): Peer => ({ podSelector: { matchLabels: labels } });

function policy(c: DeployConfig, name: string, role: Parameters<typeof meta>[2], podLabels: Record<string, string>, ingress: INetworkPolicyIngressRule[]): Manifest {
  const np: INetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(c, name, role),
    spec: { podSelector: { matchLabels: podLabels }, policyTypes: ['Ingress'], ingress },
  };
  return np as Manifest;
}

/** The scraper on a metrics port, when there is one. */
function scrape(c: DeployConfig, port: number): INetworkPolicyIngressRule[] {
  return c.monitoringNamespace ? [{ from: [inNamespace(c.monitoringNamespace)], ports: tcp(port) }] : [];
}

const rolePods = (c: DeployConfig, role: Role) => ({ 'app.kubernetes.io/component': role, 'app.kubernetes.io/instance': c.name });

export function renderNetwork(plan: DeployPlan): Manifest[] {
  const c = plan.config;
  const n = names(c);
  const out: Manifest[] = [];
  const role = (r: Role, ingress: INetworkPolicyIngressRule[]) => out.push(policy(c, n.rolePolicy(r), r, rolePods(c, r), ingress));

  role('api', [{ ports: tcp(API_PORT) }, ...scrape(c, METRICS_PORT)]);
  role('housekeeper', scrape(c, METRICS_PORT));
  role('migrate', []);
  if (plan.functions.length && c.mode === 'knative') {
    role('function', [{ from: c.knativeNamespaces.map(inNamespace) }, ...scrape(c, METRICS_PORT)]);
    role('dispatcher', scrape(c, METRICS_PORT));
  }
  if (plan.functions.length && c.mode === 'worker') role('worker', scrape(c, METRICS_PORT));

  for (const server of Object.keys(c.tools).sort()) {
    out.push(policy(c, n.toolPolicy(server), 'tool', selector(c, n.tool(server)), [{ from: [podsLabelled({ [toolAccessLabel(server)]: 'true' })], ports: tcp(TOOL_PORT) }]));
  }
  if ('embedded' in c.redis) {
    const from = [podsLabelled({ [REDIS_CLIENT_LABEL]: 'true' }), inNamespace(c.kedaNamespace)];
    out.push(policy(c, n.redisPolicy, 'redis', selector(c, n.redis), [{ from, ports: tcp(6379) }]));
  }

  // CloudNativePG: instances (5432 PostgreSQL, 8000 the instance manager's status, 9187 metrics); PgBouncer (5432, 9127).
  const operator: INetworkPolicyIngressRule = { from: [inNamespace(c.cnpgNamespace)], ports: tcp(5432, 8000) };
  const instances = (cluster: string, clients: INetworkPolicyIngressRule[]) =>
    policy(c, cluster, 'database', { 'cnpg.io/cluster': cluster, 'cnpg.io/podRole': 'instance' }, [
      { from: [podsLabelled({ 'cnpg.io/cluster': cluster })], ports: tcp(5432, 8000) },
      operator,
      ...clients,
      ...scrape(c, 9187),
    ]);
  out.push(instances(n.cluster, []));
  out.push(
    policy(c, n.pooler, 'database', { 'cnpg.io/poolerName': n.pooler }, [
      { from: [podsLabelled({ [DB_CLIENT_LABEL]: 'true' })], ports: tcp(5432) },
      operator,
      ...scrape(c, 9127),
    ]),
  );
  if (Object.values(c.tools).some((t) => t.ledger)) {
    out.push(instances(n.ledgerCluster, [{ from: [podsLabelled({ [LEDGER_CLIENT_LABEL]: 'true' })], ports: tcp(5432) }]));
  }
  return out;
}
