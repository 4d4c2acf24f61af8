/**
 * Checks across objects, which no schema can see and which otherwise show only in a
 * cluster: every name an object points at exists (ServiceAccounts, Deployments a
 * ScaledObject scales, TriggerAuthentications, pods a Service selects), every Secret
 * referenced is one that someone creates, and credentials reach only the pods that
 * need them: the signing key only pods that run steps, tool Secrets only tool servers.
 */
import type { DeployConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { names } from './names.ts';
import type { Problem } from './validate.ts';

interface PodSpecLike {
  serviceAccountName?: string;
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  volumes?: Array<{ secret?: { secretName?: string } }>;
}
interface ContainerLike {
  env?: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string } }>;
}

export interface PodView {
  object: string;
  component: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: PodSpecLike;
}

/** Every pod template among the objects, with the labels its pods get. */
export function podsOf(objects: readonly Manifest[]): PodView[] {
  const out: PodView[] = [];
  for (const o of objects) {
    const spec = o.spec as { template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: PodSpecLike } } | undefined;
    if (!spec?.template?.spec) continue;
    const labels = spec.template.metadata?.labels ?? {};
    const annotations = spec.template.metadata?.annotations ?? {};
    out.push({ object: `${o.kind}/${o.metadata.name}`, component: labels['app.kubernetes.io/component'] ?? '?', labels, annotations, spec: spec.template.spec });
  }
  return out;
}

/** Secret names a pod reads (env, envFrom, volumes). */
export function secretsOf(pod: PodView): Set<string> {
  const out = new Set<string>();
  for (const c of [...(pod.spec.initContainers ?? []), ...(pod.spec.containers ?? [])]) {
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) out.add(e.valueFrom.secretKeyRef.name);
    for (const e of c.envFrom ?? []) if (e.secretRef) out.add(e.secretRef.name);
  }
  for (const v of pod.spec.volumes ?? []) if (v.secret?.secretName) out.add(v.secret.secretName);
  return out;
}

/** Secrets that exist when the pods start: made by CNPG, by `baton deploy`, or by the user (named in the config). */
export function knownSecrets(c: DeployConfig): Set<string> {
  const n = names(c);
  const known = new Set([n.appSecret, n.signingSecret, n.verifySecret]);
  if (c.mode === 'knative') known.add(n.invokeSecret);
  if (Object.values(c.tools).some((t) => t.ledger)) known.add(n.ledgerSecret);
  if ('embedded' in c.redis) known.add(n.redisSecret);
  else known.add(c.redis.external.passwordSecret.name);
  if (c.llm.secret) known.add(c.llm.secret);
  for (const s of toolSecretsOf(c)) known.add(s);
  return known;
}

/** Secrets the config names for tool servers (envFrom and mounted files). */
export function toolSecretsOf(c: DeployConfig): Set<string> {
  return new Set(Object.values(c.tools).flatMap((t) => [...t.secrets, ...Object.values(t.secretFiles).map((f) => f.secret)]));
}

const STEP_COMPONENTS = new Set(['function', 'worker']);
const INVOKE_COMPONENTS = new Set(['function', 'dispatcher']);

export function checkReferences(c: DeployConfig, objects: readonly Manifest[]): Problem[] {
  const n = names(c);
  const problems: Problem[] = [];
  const byKind = (kind: string) => new Map(objects.filter((o) => o.kind === kind).map((o) => [o.metadata.name, o]));
  const accounts = byKind('ServiceAccount');
  const deployments = byKind('Deployment');
  const auths = byKind('TriggerAuthentication');
  const pods = podsOf(objects);
  const known = knownSecrets(c);
  const toolSecrets = toolSecretsOf(c);

  for (const pod of pods) {
    const add = (message: string) => problems.push({ object: pod.object, path: '/spec/template/spec', message });
    if (!pod.spec.serviceAccountName || !accounts.has(pod.spec.serviceAccountName)) add(`ServiceAccount "${pod.spec.serviceAccountName}" is not rendered`);
    for (const secret of secretsOf(pod)) {
      if (!known.has(secret)) add(`reads Secret "${secret}", which nobody creates`);
      if (secret === n.signingSecret && !STEP_COMPONENTS.has(pod.component)) add('mounts the capability signing key but runs no steps');
      if (secret === n.invokeSecret && !INVOKE_COMPONENTS.has(pod.component)) add('reads the invoke credential but neither dispatches nor serves steps');
      if (secret === n.ledgerSecret && pod.component !== 'tool') add('reads the tool ledger credentials but is not a tool server');
      if (secret === n.appSecret && pod.component === 'tool') add('a tool server reads the runtime database credentials');
      if (toolSecrets.has(secret) && pod.component !== 'tool') add(`mounts tool Secret "${secret}" but is not a tool server`);
    }
  }
  for (const o of objects) {
    const spec = o.spec as Record<string, unknown>;
    const id = `${o.kind}/${o.metadata.name}`;
    if (o.kind === 'ScaledObject') {
      const target = (spec.scaleTargetRef as { name: string }).name;
      const d = deployments.get(target);
      if (!d) problems.push({ object: id, path: '/spec/scaleTargetRef', message: `Deployment "${target}" is not rendered` });
      else if ((d.spec as { replicas?: number }).replicas !== undefined) {
        problems.push({ object: `Deployment/${target}`, path: '/spec/replicas', message: 'is set, but KEDA owns the replicas of a scaled Deployment' });
      }
      for (const t of spec.triggers as Array<{ authenticationRef?: { name: string } }>) {
        if (t.authenticationRef && !auths.has(t.authenticationRef.name)) {
          problems.push({ object: id, path: '/spec/triggers', message: `TriggerAuthentication "${t.authenticationRef.name}" is not rendered` });
        }
      }
    }
    if (o.kind === 'Service' && o.apiVersion === 'v1') {
      const sel = (spec.selector ?? {}) as Record<string, string>;
      const matches = pods.some((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v));
      if (!matches) problems.push({ object: id, path: '/spec/selector', message: 'selects no rendered pods' });
    }
    if (o.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1') {
      const rev = ((spec.template as { metadata?: { name?: string } }).metadata?.name ?? '') as string;
      if (!rev.startsWith(`${o.metadata.name}-`)) problems.push({ object: id, path: '/spec/template/metadata/name', message: 'must start with the Service name and "-"' });
    }
  }
  return problems;
}
