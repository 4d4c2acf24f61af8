/**
 * Tool servers: a Deployment and a Service each (not Knative: they hold credentials
 * and answer quickly). Their credentials come from the Secrets the config names, as
 * `envFrom` references, never rendered inline; they verify capability tokens with the
 * public key only. A NetworkPolicy admits only the pods of the functions that declared
 * the server (`tools: { git: [...] }` → label `tools.baton.dev/git`).
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IService } from 'kubernetes-models/v1/Service';
import type { DeployConfig, ToolConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { names, selector, toolAccessLabel } from './names.ts';
import { baseContainer, podSecurity, resources, scratch } from './render-security.ts';

export const TOOL_PORT = 8080;

export function renderTool(c: DeployConfig, server: string, tool: ToolConfig): Manifest[] {
  const n = names(c);
  const name = n.tool(server);
  const dirs = scratch(tool.writableDirs);
  // The server checks the Host header (DNS rebinding): every name the Service answers to.
  const hosts = [name, `${name}.${c.namespace}`, `${name}.${c.namespace}.svc`, `${name}.${c.namespace}.svc.${c.clusterDomain}`];
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, name, 'tool'),
    spec: {
      replicas: tool.replicas,
      selector: { matchLabels: selector(c, name) },
      template: {
        metadata: { labels: meta(c, name, 'tool').labels },
        spec: {
          serviceAccountName: n.serviceAccount('tool'),
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          containers: [
            {
              ...baseContainer(c, 'tool', []),
              args: undefined,
              command: tool.command ?? ['node', `tools/${server}/server.ts`],
              env: [
                { name: 'PORT', value: String(TOOL_PORT) },
                { name: 'HOST', value: '0.0.0.0' },
                { name: 'BATON_TOOL_PUBLIC_KEY', valueFrom: { secretKeyRef: { name: n.verifySecret, key: n.verifyKey } } },
                { name: 'BATON_TOOL_ALLOWED_HOSTS', value: hosts.join(',') },
                ...Object.keys(tool.env)
                  .sort()
                  .map((key) => ({ name: key, value: tool.env[key] })),
              ],
              envFrom: tool.secrets.length ? tool.secrets.map((secret) => ({ secretRef: { name: secret } })) : undefined,
              ports: [{ name: 'http', containerPort: TOOL_PORT }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6 },
              resources: resources(c, 'tool', tool.resources),
              volumeMounts: dirs.mounts,
            },
          ],
          volumes: dirs.volumes,
        },
      },
    },
  };
  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(c, name, 'tool'),
    spec: { selector: selector(c, name), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
  const policy: INetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(c, n.toolPolicy(server), 'tool'),
    spec: {
      podSelector: { matchLabels: selector(c, name) },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { [toolAccessLabel(server)]: 'true' } } }], ports: [{ protocol: 'TCP', port: TOOL_PORT }] }],
    },
  };
  return [deployment, service, policy] as Manifest[];
}
