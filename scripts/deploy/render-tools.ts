/**
 * Tool servers: a Deployment and a Service each (not Knative: they hold credentials
 * and answer quickly). Their credentials come from the Secrets the config names,
 * mounted as read-only files (`secretFiles`, e.g. GITHUB_TOKEN_FILE) or, for servers
 * that only read env vars, as `envFrom`; never rendered inline. They verify capability
 * tokens with the public key only, enforce the tenant policy (BATON_TOOL_POLICY, always
 * rendered), and record side effects in a ledger database of their own
 * (BATON_TOOL_LEDGER_URL, from the ledger cluster's Secret, never the runtime's).
 *
 * The process runs under tini (the container's command replaces the image's
 * entrypoint), drains on SIGTERM (tools/lib/shutdown.ts), and is taken out of the
 * Service's endpoints by a short preStop pause before that. It is ready (`/readyz`)
 * only when it can serve: the git server, for one, not before its repository exists,
 * which `volumes` plus `initContainers` provide (a clone into an emptyDir, or a claim).
 * Who may connect is in render-network.ts.
 */
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { DeployConfig, ToolConfig } from './config.ts';
import { type Manifest, meta } from './manifest.ts';
import { LEDGER_CLIENT_LABEL, names, selector } from './names.ts';
import { tracingEnv } from './render-env.ts';
import { baseContainer, containerSecurity, podSecurity, resources, scratch } from './render-security.ts';

export const TOOL_PORT = 8080;
export const TINI = ['/usr/bin/tini', '--'];
/** In-flight tool calls get this long after SIGTERM; Kubernetes waits TOOL_GRACE_S in all. */
export const TOOL_DRAIN_MS = 20_000;
const TOOL_GRACE_S = 35;
/** Endpoint removal reaches every node in about this long; the server keeps serving meanwhile. */
const PRE_STOP_S = 5;
/** Where `secretFiles` Secrets are mounted: `<dir>/<secret>/<key>`. */
export const SECRET_FILES_DIR = '/var/run/secrets/baton';

interface Mounted {
  volumes: IVolume[];
  mounts: IVolumeMount[];
}

/** The tool's own volumes (config `volumes`), mounted where the config says. */
function toolVolumes(tool: ToolConfig): Mounted {
  const out: Mounted = { volumes: [], mounts: [] };
  for (const name of Object.keys(tool.volumes).sort()) {
    const v = tool.volumes[name];
    out.volumes.push('emptyDir' in v ? { name, emptyDir: v.emptyDir } : { name, persistentVolumeClaim: v.persistentVolumeClaim });
    out.mounts.push({ name, mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}) });
  }
  return out;
}

/** One read-only Secret volume per Secret named in `secretFiles`, and the env vars with the files' paths. */
function secretFiles(tool: ToolConfig): Mounted & { env: IEnvVar[] } {
  const out: Mounted & { env: IEnvVar[] } = { volumes: [], mounts: [], env: [] };
  const secrets = [...new Set(Object.values(tool.secretFiles).map((f) => f.secret))].sort();
  for (const secret of secrets) {
    const name = `secret-${secret}`;
    // 0440 with the pod's fsGroup: readable by the server's group, by no other user.
    out.volumes.push({ name, secret: { secretName: secret, defaultMode: 0o440 } });
    out.mounts.push({ name, mountPath: `${SECRET_FILES_DIR}/${secret}`, readOnly: true });
  }
  for (const envName of Object.keys(tool.secretFiles).sort()) {
    const f = tool.secretFiles[envName];
    out.env.push({ name: envName, value: `${SECRET_FILES_DIR}/${f.secret}/${f.key}` });
  }
  return out;
}

function serverEnv(c: DeployConfig, tool: ToolConfig, hosts: string[], files: IEnvVar[]): IEnvVar[] {
  const n = names(c);
  return [
    { name: 'PORT', value: String(TOOL_PORT) },
    { name: 'HOST', value: '0.0.0.0' },
    { name: 'BATON_TOOL_PUBLIC_KEY', valueFrom: { secretKeyRef: { name: n.verifySecret, key: n.verifyKey } } },
    { name: 'BATON_TOOL_ALLOWED_HOSTS', value: hosts.join(',') },
    { name: 'BATON_TOOL_POLICY', value: JSON.stringify(tool.policy ?? c.toolPolicy) },
    ...(tool.ledger ? [{ name: 'BATON_TOOL_LEDGER_URL', valueFrom: { secretKeyRef: { name: n.ledgerSecret, key: 'uri' } } }] : []),
    { name: 'BATON_TOOL_DRAIN_MS', value: String(TOOL_DRAIN_MS) },
    ...tracingEnv(c),
    ...files,
    ...Object.keys(tool.env)
      .sort()
      .map((key) => ({ name: key, value: tool.env[key] })),
  ];
}

export function renderTool(c: DeployConfig, server: string, tool: ToolConfig): Manifest[] {
  const n = names(c);
  const name = n.tool(server);
  const dirs = scratch(tool.writableDirs);
  const own = toolVolumes(tool);
  const files = secretFiles(tool);
  // The server checks the Host header (DNS rebinding): every name the Service answers to.
  const hosts = [name, `${name}.${c.namespace}`, `${name}.${c.namespace}.svc`, `${name}.${c.namespace}.svc.${c.clusterDomain}`];
  const command = tool.command ?? ['node', `tools/${server}/server.ts`];
  const initContainers: IContainer[] = tool.initContainers.map((init) => ({
    name: init.name,
    image: init.image ?? c.image,
    imagePullPolicy: 'IfNotPresent',
    command: init.command,
    env: [
      { name: 'HOME', value: '/tmp' },
      ...Object.keys(init.env)
        .sort()
        .map((key) => ({ name: key, value: init.env[key] })),
    ],
    securityContext: containerSecurity(),
    resources: resources(c, 'tool', init.resources ?? tool.resources),
    volumeMounts: [dirs.mounts[0], ...own.mounts.map((m) => ({ name: m.name, mountPath: m.mountPath }))],
  }));
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(c, name, 'tool'),
    spec: {
      replicas: tool.replicas,
      selector: { matchLabels: selector(c, name) },
      template: {
        metadata: { labels: { ...meta(c, name, 'tool').labels, ...(tool.ledger ? { [LEDGER_CLIENT_LABEL]: 'true' } : {}) } },
        spec: {
          serviceAccountName: n.serviceAccount('tool'),
          automountServiceAccountToken: false,
          securityContext: podSecurity(),
          terminationGracePeriodSeconds: TOOL_GRACE_S,
          ...(initContainers.length ? { initContainers } : {}),
          containers: [
            {
              ...baseContainer(c, 'tool', []),
              args: undefined,
              command: command[0]?.endsWith('tini') ? command : [...TINI, ...command],
              env: serverEnv(c, tool, hosts, files.env),
              envFrom: tool.secrets.length ? tool.secrets.map((secret) => ({ secretRef: { name: secret } })) : undefined,
              ports: [{ name: 'http', containerPort: TOOL_PORT }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, timeoutSeconds: 3 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
              lifecycle: { preStop: { sleep: { seconds: PRE_STOP_S } } },
              resources: resources(c, 'tool', tool.resources),
              volumeMounts: [...dirs.mounts, ...own.mounts, ...files.mounts],
            },
          ],
          volumes: [...dirs.volumes, ...own.volumes, ...files.volumes],
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
  return [deployment, service] as Manifest[];
}
