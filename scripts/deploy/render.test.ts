/**
 * Renders the demo platform in both modes and checks what only a cluster would show:
 * names that must agree across objects and with the runtime, env that must be set,
 * and credentials that must reach only the pods that need them.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../runtime/config.ts';
import { tracingConfigured } from '../../tools/lib/tracing.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { CONSUMER_GROUP, streamKey } from '../../runtime/queue/names.ts';
import { renderValidated } from '../commands/deploy.ts';
import { pinnedUrl, revisionTag } from '../lib/revision-tag.ts';
import { checkReferences, podsOf, secretsOf } from './check-references.ts';
import { type DeployConfig, loadDeployConfig, parseConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { loadPolicy } from '../../tools/lib/policy.ts';
import { names, toolUrlEnv } from './names.ts';
import { planDeploy } from './plan.ts';
import { allObjects, render } from './render.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const demo = (mode: 'knative' | 'worker') => loadDeployConfig(ROOT, { mode });

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

const find = (objects: Manifest[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} is rendered`);
  return o;
};
const containersOf = (o: Manifest) =>
  ((o.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers);

/** The env a container sees, with secrets filled in and `$(VAR)` expanded as the kubelet does. */
function podEnv(c: Container, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { ...extra };
  for (const e of c.env ?? []) {
    // A stand-in for the Secret's value, long enough for the secrets whose length the config checks.
    if (e.valueFrom?.secretKeyRef) env[e.name] = `secret-${e.valueFrom.secretKeyRef.key.replace(/[^a-z]/gi, '')}`.padEnd(e.name === 'BATON_INVOKE_TOKEN' ? 44 : 0, '=');
    else env[e.name] = (e.value ?? '').replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (m, v: string) => env[v] ?? m);
  }
  return env;
}

for (const mode of ['knative', 'worker'] as const) {
  describe(`demo platform, ${mode} mode`, async () => {
    const config = await demo(mode);
    const objects = allObjects(await renderValidated(config, []));
    const n = names(config);
    const registry = await loadFunctions(loadConfig({}).functionsDir);
    const pods = podsOf(objects);

    test('renders and validates every object, with no broken reference', () => {
      assert.deepEqual(checkReferences(config, objects), []);
      const kinds = new Set(objects.map((o) => o.kind));
      for (const k of ['Namespace', 'ServiceAccount', 'Cluster', 'Pooler', 'Deployment', 'Service', 'NetworkPolicy', 'TriggerAuthentication', 'Job', 'ScaledObject']) {
        assert.ok(kinds.has(k), `renders a ${k}`);
      }
    });

    test('each ScaledObject watches exactly the stream and group the runtime uses for its function', () => {
      for (const fn of registry.keys()) {
        const target = mode === 'knative' ? n.dispatcher(fn) : n.worker(fn);
        const so = find(objects, 'ScaledObject', target);
        const spec = so.spec as { scaleTargetRef: { name: string }; minReplicaCount: number; triggers: Array<{ type: string; metadata: Record<string, unknown> }> };
        assert.equal(spec.scaleTargetRef.name, target);
        assert.equal(spec.minReplicaCount, 0);
        assert.deepEqual(spec.triggers.map((t) => t.type), ['redis-streams', 'redis-streams']);
        for (const t of spec.triggers) {
          assert.equal(t.metadata.stream, streamKey(config.redisPrefix, fn));
          assert.equal(t.metadata.consumerGroup, CONSUMER_GROUP);
          assert.equal(t.metadata.address, `${n.redis}.${config.namespace}.svc.${config.clusterDomain}:6379`);
          for (const [key, value] of Object.entries(t.metadata)) assert.equal(typeof value, 'string', `${key} is a string`);
        }
        assert.ok(spec.triggers.some((t) => t.metadata.lagCount && t.metadata.activationLagCount === '0'), 'a lag trigger wakes from zero');
        assert.ok(spec.triggers.some((t) => t.metadata.pendingEntriesCount), 'a pending trigger holds replicas while steps run');
        // The scaled pods read the same prefix, so they use the same stream.
        const env = podEnv(containersOf(find(objects, 'Deployment', target))[0]);
        assert.equal(loadConfig(env).redisPrefix, config.redisPrefix);
      }
    });

    test('DATABASE_URL of every Baton pod points at the Pooler Service, port 5432', () => {
      const pooler = find(objects, 'Pooler', n.pooler);
      assert.equal((pooler.spec as { pgbouncer: { poolMode: string } }).pgbouncer.poolMode, 'transaction');
      assert.equal((pooler.spec as { cluster: { name: string } }).cluster.name, find(objects, 'Cluster', n.cluster).metadata.name);
      for (const pod of pods.filter((p) => !['tool', 'redis'].includes(p.component))) {
        const env = podEnv(pod.spec.containers![0] as Container);
        const url = new URL(env.DATABASE_URL);
        assert.equal(url.hostname, pooler.metadata.name, pod.object);
        assert.equal(url.port, '5432');
        assert.equal(url.username, 'secret-username');
        assert.equal(url.pathname, '/secret-dbname');
        const refs = (pod.spec.containers![0] as Container).env!.filter((e) => e.valueFrom?.secretKeyRef?.name === n.appSecret).map((e) => e.valueFrom!.secretKeyRef!.key);
        assert.deepEqual(refs.sort(), ['dbname', 'password', 'username']);
      }
    });

    test('every env var a Baton pod reads is set, and loads into a valid config', () => {
      for (const pod of pods.filter((p) => !['tool', 'redis'].includes(p.component))) {
        const c = pod.spec.containers![0] as Container;
        // Knative injects PORT and K_REVISION into function pods.
        const env = podEnv(c, pod.component === 'function' ? { PORT: '8080', K_REVISION: 'pr-review-00001' } : {});
        const cfg = loadConfig(env);
        assert.ok(cfg.databaseUrl, `${pod.object}: DATABASE_URL`);
        if (pod.component !== 'migrate') assert.ok(cfg.redisUrl?.startsWith('redis://:secret-password@'), `${pod.object}: REDIS_URL`);
        if (pod.component === 'function' || pod.component === 'worker') {
          const fn = c.args!.at(-1)!;
          assert.ok(cfg.toolSigningKey, `${pod.object}: BATON_TOOL_SIGNING_KEY`);
          assert.deepEqual(Object.keys(cfg.toolUrls).sort(), Object.keys(registry.get(fn)!.tools).sort());
          for (const server of Object.keys(cfg.toolUrls)) {
            const svc = find(objects, 'Service', n.tool(server));
            assert.equal(new URL(cfg.toolUrls[server]).hostname, `${svc.metadata.name}.${config.namespace}.svc.${config.clusterDomain}`);
          }
        } else {
          assert.equal(cfg.toolSigningKey, undefined, `${pod.object} runs no steps`);
          assert.deepEqual(cfg.toolUrls, {});
        }
        if (pod.component === 'function') assert.equal(cfg.revision, 'pr-review-00001');
      }
      for (const pod of pods.filter((p) => p.component === 'tool')) {
        const c = pod.spec.containers![0] as Container;
        const env = podEnv(c);
        for (const key of ['PORT', 'HOST', 'BATON_TOOL_PUBLIC_KEY', 'BATON_TOOL_ALLOWED_HOSTS']) assert.ok(env[key], `${pod.object}: ${key}`);
        assert.equal(env.BATON_TOOL_SIGNING_KEY, undefined);
        const server = c.command!.at(-1)!.split('/')[1];
        assert.ok(env.BATON_TOOL_ALLOWED_HOSTS.split(',').includes(`${n.tool(server)}.${config.namespace}.svc.${config.clusterDomain}`));
      }
    });

    test('credentials reach only the pods that need them, and never inline', () => {
      for (const pod of pods) {
        const secrets = secretsOf(pod);
        const stepPod = pod.component === 'function' || pod.component === 'worker';
        assert.equal(secrets.has(n.signingSecret), stepPod, `${pod.object}: signing key only where steps run`);
        assert.equal(secrets.has(n.verifySecret), pod.component === 'tool', `${pod.object}: public key only on tool servers`);
        for (const e of (pod.spec.containers as Container[]).flatMap((c) => c.env ?? [])) {
          if (/PASSWORD|KEY|TOKEN|SECRET/.test(e.name) && !e.name.endsWith('_URL')) assert.ok(e.valueFrom?.secretKeyRef, `${pod.object}: ${e.name} comes from a Secret`);
        }
      }
      assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no Secret is rendered');
    });

    test('pods run as non-root, read-only, with requests, limits and no API token', () => {
      const accounts = new Map(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => [o.metadata.name, o]));
      for (const pod of pods) {
        assert.equal(accounts.get(pod.spec.serviceAccountName!)?.automountServiceAccountToken, false, pod.object);
        for (const c of pod.spec.containers as Container[]) {
          assert.equal(c.securityContext?.runAsNonRoot, true, pod.object);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, pod.object);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, pod.object);
          assert.ok(c.resources?.requests?.memory && c.resources.limits?.memory && c.resources.requests.cpu, `${pod.object}: resources`);
        }
      }
    });

    test('scaled Deployments outlive their drain period and leave replicas to KEDA', () => {
      for (const so of objects.filter((o) => o.kind === 'ScaledObject')) {
        const d = find(objects, 'Deployment', (so.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name);
        const spec = d.spec as { replicas?: number; template: { spec: { terminationGracePeriodSeconds: number } } };
        assert.equal(spec.replicas, undefined);
        const drainMs = Number(podEnv(containersOf(d)[0]).BATON_GRACE_MS);
        assert.ok(spec.template.spec.terminationGracePeriodSeconds * 1000 > drainMs);
      }
    });

    test('tool servers are reachable only from the functions that declared them', () => {
      for (const server of Object.keys(config.tools)) {
        const policy = find(objects, 'NetworkPolicy', n.toolPolicy(server));
        const spec = policy.spec as { podSelector: { matchLabels: Record<string, string> }; ingress: Array<{ from: Array<{ podSelector: { matchLabels: Record<string, string> } }> }> };
        const admitted = pods.filter((p) => spec.ingress.some((rule) => rule.from.some((f) => Object.entries(f.podSelector.matchLabels).every(([k, v]) => p.labels[k] === v))));
        const users = [...registry.values()].filter((a) => server in a.tools).map((a) => a.name);
        assert.deepEqual(admitted.map((p) => p.component).sort(), users.map(() => (mode === 'knative' ? 'function' : 'worker')));
        const toolPod = pods.find((p) => Object.entries(spec.podSelector.matchLabels).every(([k, v]) => p.labels[k] === v));
        assert.equal(toolPod?.component, 'tool');
      }
    });

    test('every tool server enforces a policy it can read, and records side effects in a ledger of its own', () => {
      for (const server of Object.keys(config.tools)) {
        const c = containersOf(find(objects, 'Deployment', n.tool(server)))[0];
        const raw = c.env?.find((e) => e.name === 'BATON_TOOL_POLICY')?.value;
        assert.ok(raw, `${server}: BATON_TOOL_POLICY is rendered`);
        assert.deepEqual(JSON.parse(JSON.stringify(loadPolicy(raw))), config.tools[server].policy ?? config.toolPolicy, `${server}: the server reads the configured policy`);
        const ledger = c.env?.find((e) => e.name === 'BATON_TOOL_LEDGER_URL');
        if (config.tools[server].ledger) {
          assert.deepEqual(ledger?.valueFrom?.secretKeyRef, { name: n.ledgerSecret, key: 'uri' }, `${server}: the ledger's own credentials`);
          assert.ok(!(c.env ?? []).some((e) => e.name === 'DATABASE_URL' || /REDIS/.test(e.name)), `${server}: nothing of the runtime's`);
        } else {
          assert.equal(ledger, undefined);
        }
      }
      for (const pod of pods.filter((p) => p.component !== 'tool')) {
        assert.ok(!secretsOf(pod).has(n.ledgerSecret), `${pod.object} holds no ledger credential`);
      }
    });

    test('the API is always on, with readiness and liveness probes', () => {
      const api = find(objects, 'Deployment', n.api);
      assert.ok(((api.spec as { replicas: number }).replicas ?? 0) >= 1);
      assert.ok(!objects.some((o) => o.kind === 'ScaledObject' && (o.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === n.api));
      const c = containersOf(api)[0] as Container & { readinessProbe: { httpGet: { path: string } }; livenessProbe: { httpGet: { path: string } } };
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    });

    if (mode === 'knative') {
      test("the dispatcher POSTs to its function's Knative Service, and pinned steps to a routed revision", () => {
        for (const fn of registry.keys()) {
          const ksvc = objects.find((o) => o.kind === 'Service' && o.apiVersion === 'serving.knative.dev/v1' && o.metadata.name === n.knativeService(fn));
          assert.ok(ksvc);
          const spec = ksvc.spec as { template: { metadata: { name: string; annotations: Record<string, string> }; spec: { timeoutSeconds: number } }; traffic: Array<{ revisionName: string; tag: string; percent: number }> };
          const args = containersOf(find(objects, 'Deployment', n.dispatcher(fn)))[0].args!;
          const url = new URL(args[args.indexOf('--dispatch') + 1]);
          assert.equal(url.hostname, `${ksvc.metadata.name}.${config.namespace}.svc.${config.clusterDomain}`);
          assert.equal(url.pathname, '/invoke');
          const revision = spec.template.metadata.name;
          const routed = spec.traffic.find((t) => t.revisionName === revision);
          assert.equal(routed?.percent, 100);
          // Knative serves a tag at <tag>-<service>.<namespace>.svc.<domain>.
          const pinned = new URL(pinnedUrl(args[args.indexOf('--pinned') + 1], revision));
          assert.equal(pinned.hostname, `${routed!.tag}-${ksvc.metadata.name}.${config.namespace}.svc.${config.clusterDomain}`);
          assert.ok(pinned.hostname.split('.')[0].length <= 63);
          assert.equal(spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'], '0');
          const longest = Math.max(...[...registry.get(fn)!.steps.values()].map((s) => s.timeoutMs ?? registry.get(fn)!.timeoutMs ?? 120_000));
          assert.ok(spec.template.spec.timeoutSeconds * 1000 > longest && spec.template.spec.timeoutSeconds <= 600);
        }
      });
    }
  });
}

describe('revisions', () => {
  test('a changed template is a new revision; retained revisions stay routed under their tags', async () => {
    const config = await demo('knative');
    const registry = await loadFunctions(loadConfig({}).functionsDir);
    const ksvcOf = (c: DeployConfig, retain = {}) =>
      allObjects(render(planDeploy(c, registry), { retain })).find((o) => o.apiVersion === 'serving.knative.dev/v1' && o.metadata?.name === 'pr-review')!;
    const a = ksvcOf(config);
    const revA = (a.spec as { template: { metadata: { name: string } } }).template.metadata.name;
    const b = ksvcOf(parseConfig({ ...config, image: 'example.org/baton:2' }), { 'pr-review': [revA] });
    const spec = b.spec as { template: { metadata: { name: string } }; traffic: Array<{ revisionName: string; tag: string; percent: number }> };
    assert.notEqual(spec.template.metadata.name, revA);
    assert.deepEqual(spec.traffic.map((t) => [t.revisionName, t.tag, t.percent]), [
      [spec.template.metadata.name, revisionTag(spec.template.metadata.name), 100],
      [revA, revisionTag(revA), 0],
    ]);
  });

  test('a step longer than Knative allows is refused in knative mode', async () => {
    const config = await demo('knative');
    const { defineAgent, done } = await import('../../runtime/define.ts');
    const v = await import('valibot');
    const slow = defineAgent({ name: 'slow', input: v.object({}), start: 'a', steps: { a: { run: () => done(), timeoutMs: 590_000 } } });
    const only = { ...config, functions: {} };
    assert.throws(() => planDeploy(only, new Map([['slow', slow]])), /Knative serves at most 600 s/);
    assert.doesNotThrow(() => planDeploy({ ...only, mode: 'worker' }, new Map([['slow', slow]])));
  });

  test('a function declaring a tool server the config lacks is refused', async () => {
    const config = await demo('worker');
    const registry = await loadFunctions(loadConfig({}).functionsDir);
    assert.throws(() => planDeploy({ ...config, tools: { git: config.tools.git } }, registry), /declares tool server "review"/);
  });
});

test('tracing: every Baton pod and tool server gets the collector and the sampler; without it, none', async () => {
  const roles = ['api', 'housekeeper', 'function', 'dispatcher', 'worker', 'tool'];
  for (const mode of ['knative', 'worker'] as const) {
    const base = await demo(mode);
    const traced = parseConfig({ ...base, tracing: { endpoint: 'http://otel-collector.observability:4318', sampleRatio: 0.25 } });
    const pods = podsOf(allObjects(await renderValidated(traced, []))).filter((p) => roles.includes(p.component));
    const expected = mode === 'knative' ? ['api', 'housekeeper', 'function', 'dispatcher', 'tool'] : ['api', 'housekeeper', 'worker', 'tool'];
    assert.deepEqual([...new Set(pods.map((p) => p.component))].sort(), expected.sort());
    for (const pod of pods) {
      const env = podEnv(pod.spec.containers![0] as Container);
      assert.equal(tracingConfigured(env), true, pod.object);
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector.observability:4318', pod.object);
      assert.equal(env.OTEL_TRACES_SAMPLER_ARG, '0.25');
    }
    for (const pod of podsOf(allObjects(await renderValidated(base, [])))) {
      assert.equal(tracingConfigured(podEnv(pod.spec.containers![0] as Container)), false, pod.object);
    }
  }
  const worker = await demo('worker');
  assert.throws(() => parseConfig({ ...worker, tracing: { endpoint: 'collector:4318' } }), /tracing\.endpoint|URL/);
});

test('tool URL env names round-trip through the runtime config', () => {
  assert.deepEqual(loadConfig({ [toolUrlEnv('code-search')]: 'http://x/mcp' }).toolUrls, { 'code-search': 'http://x/mcp' });
});
