/**
 * `npm run test:k8s-static`: the platform as a cluster would receive it, proved
 * without a cluster. The demo is rendered in both modes (plus a configuration with a
 * credentialled github tool server), printed as `baton deploy` prints it, decoded the
 * way kubectl decodes it (a YAML 1.1 reader, and kubectl itself, offline), and then
 * held to the rules an SRE would check by hand before applying it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../runtime/config.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { renderValidated } from '../../scripts/commands/deploy.ts';
import { podsOf } from '../../scripts/deploy/check-references.ts';
import { type DeployConfig, loadDeployConfig, parseConfig } from '../../scripts/deploy/config.ts';
import type { Manifest } from '../../scripts/deploy/manifest.ts';
import { names } from '../../scripts/deploy/names.ts';
import { admits, platformPods, selectedBy } from '../../scripts/deploy/network.ts';
import { formatManifests } from '../../scripts/deploy/output.ts';
import { allObjects } from '../../scripts/deploy/render.ts';
import { checkRules } from '../../scripts/deploy/rules.ts';
import { stepBudget } from '../../scripts/lib/step-budget.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KUBECTL = ['/usr/bin/kubectl', ...(process.env.PATH ?? '').split(':').map((d) => path.join(d, 'kubectl'))].find((p) => fs.existsSync(p));

interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  resources?: { limits?: Record<string, string> };
  readinessProbe?: { httpGet?: { path: string }; periodSeconds?: number };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; emptyDir?: unknown; secret?: { secretName: string }; persistentVolumeClaim?: unknown }>;
  terminationGracePeriodSeconds?: number;
}

const find = (objects: Manifest[], kind: string, name: string, apiVersion?: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name && (!apiVersion || x.apiVersion === apiVersion));
  assert.ok(o, `${kind}/${name} is rendered`);
  return o;
};
const template = (o: Manifest) => (o.spec as { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } }).template;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));

/** kubectl's own decoder, offline: `annotate --local` reads the files and prints what it decoded. */
function kubectlDecode(yaml: string): Manifest[] {
  const out = execFileSync(KUBECTL!, ['annotate', '--local', '-f', '-', 'baton.dev/decoded=yes', '-o', 'json'], { input: yaml, encoding: 'utf8', maxBuffer: 64 << 20 });
  // One JSON object per document, each closing with "}" alone on a line.
  return out
    .split(/(?<=^\})\n(?=\{)/m)
    .map((doc) => JSON.parse(doc) as Manifest)
    .map((o) => {
      const annotations = { ...o.metadata.annotations };
      delete annotations['baton.dev/decoded'];
      o.metadata = { ...o.metadata, annotations };
      if (!Object.keys(annotations).length) delete o.metadata.annotations;
      return o;
    });
}

/** Every env value, arg and command item of every container, with where it is. */
function strings(objects: readonly Manifest[]): Array<{ where: string; value: unknown }> {
  const out: Array<{ where: string; value: unknown }> = [];
  for (const pod of podsOf(objects)) {
    const spec = pod.spec as unknown as PodSpec;
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const e of c.env ?? []) if ('value' in e) out.push({ where: `${pod.object} ${c.name} env ${e.name}`, value: e.value });
      for (const [i, a] of (c.args ?? []).entries()) out.push({ where: `${pod.object} ${c.name} args[${i}]`, value: a });
      for (const [i, a] of (c.command ?? []).entries()) out.push({ where: `${pod.object} ${c.name} command[${i}]`, value: a });
    }
  }
  return out;
}

const GITHUB_CONFIG = { secretFiles: { GITHUB_TOKEN_FILE: { secret: 'github-token', key: 'token' } } };

async function platforms(): Promise<Array<{ label: string; config: DeployConfig; objects: Manifest[] }>> {
  const out = [];
  for (const mode of ['knative', 'worker'] as const) {
    const config = await loadDeployConfig(ROOT, { mode });
    out.push({ label: `demo, ${mode} mode`, config, objects: allObjects(await renderValidated(config, [])) });
  }
  const withGithub = parseConfig({ ...(await loadDeployConfig(ROOT, { mode: 'knative' })), tools: { ...(await loadDeployConfig(ROOT, {})).tools, github: GITHUB_CONFIG } });
  out.push({ label: 'demo with the github tool server', config: withGithub, objects: allObjects(await renderValidated(withGithub, [])) });
  const e2e = await loadDeployConfig(ROOT, {}, 'scripts/e2e-kind.config.ts');
  out.push({ label: 'scripts/e2e-kind.sh configuration', config: e2e, objects: allObjects(await renderValidated(e2e, [])) });
  return out;
}

const registry = await loadFunctions(loadConfig({}).functionsDir);

for (const { label, config, objects } of await platforms()) {
  describe(label, () => {
    const n = names(config);
    const yaml = formatManifests(objects, 'yaml');
    const pods = podsOf(objects);

    test('a YAML 1.1 reader decodes every document to exactly what was rendered', () => {
      const decoded = YAML.parseAllDocuments(yaml, { version: '1.1' }).map((d) => d.toJS() as Manifest);
      assert.equal(decoded.length, objects.length);
      for (const { where, value } of strings(decoded)) assert.equal(typeof value, 'string', `${where} decodes as ${JSON.stringify(value)}`);
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(objects)));
    });

    test('kubectl decodes every document to exactly what was rendered (offline)', (t) => {
      if (!KUBECTL) return t.skip('kubectl is not installed');
      const decoded = kubectlDecode(yaml);
      assert.equal(decoded.length, objects.length);
      const meant = new Map(strings(objects).map((s) => [s.where, s.value]));
      for (const { where, value } of strings(decoded)) assert.equal(value, meant.get(where), `${where}: kubectl reads ${JSON.stringify(value)}`);
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(objects)));
    });

    test('the central rules hold: no problem to report', () => {
      assert.deepEqual(checkRules(config, objects, registry), []);
    });

    test('every pod that holds a credential is selected by an ingress NetworkPolicy', () => {
      const all = platformPods(objects);
      assert.ok(all.some((p) => p.component === 'database') && all.some((p) => p.component === 'pooler'), 'CNPG pods are counted');
      for (const pod of all.filter((p) => p.holdsSecret)) assert.ok(selectedBy(objects, pod).length > 0, `${pod.object} is under a policy`);
    });

    test('who may connect to whom', () => {
      const all = platformPods(objects);
      const of = (component: string) => all.filter((p) => p.component === component);
      const anyPod = { namespace: 'elsewhere', labels: {} };
      const ns = (name: string) => ({ namespace: name, labels: {} });
      const inside = (labels: Record<string, string>) => ({ namespace: config.namespace, labels });
      for (const pod of [...of('worker'), ...of('dispatcher'), ...of('housekeeper'), ...of('migrate')]) {
        for (const port of [8080, 9464, 5432, 22]) assert.equal(admits(objects, pod, inside({}), port), false, `${pod.object} admits nothing on ${port}`);
        assert.equal(admits(objects, pod, anyPod, 8080), false);
      }
      for (const pod of of('function')) {
        for (const knative of config.knativeNamespaces) assert.ok(admits(objects, pod, ns(knative), 8012), `${pod.object} admits ${knative}`);
        assert.equal(admits(objects, pod, inside({ [`app.kubernetes.io/component`]: 'dispatcher' }), 8012), false, 'not even the dispatcher, directly');
        assert.equal(admits(objects, pod, anyPod, 8012), false);
      }
      for (const pod of of('api')) {
        assert.ok(admits(objects, pod, anyPod, 8080), 'the API admits its port');
        assert.equal(admits(objects, pod, anyPod, 9464), false, 'but not the metrics port from anywhere');
        assert.equal(admits(objects, pod, anyPod, 5432), false);
      }
      const client = inside({ 'baton.dev/db-client': 'true' });
      for (const pod of of('pooler')) {
        assert.ok(admits(objects, pod, client, 5432));
        assert.equal(admits(objects, pod, inside({}), 5432), false, 'a pod that is not a client');
        assert.equal(admits(objects, pod, anyPod, 5432), false);
      }
      for (const pod of of('database')) {
        assert.equal(admits(objects, pod, client, 5432), false, 'clients go through the pooler');
        assert.ok(admits(objects, pod, ns(config.cnpgNamespace), 8000), 'the CNPG operator reaches the instance manager');
        assert.equal(admits(objects, pod, anyPod, 5432), false);
      }
      if (config.monitoringNamespace) {
        for (const pod of [...of('worker'), ...of('dispatcher'), ...of('api'), ...of('function')]) {
          assert.ok(admits(objects, pod, ns(config.monitoringNamespace), 9464), `${pod.object}: Prometheus scrapes the metrics port`);
        }
      }
      const toolPods = of('tool');
      assert.ok(toolPods.length >= 2);
      for (const pod of toolPods) assert.equal(admits(objects, pod, inside({}), 8080), false, `${pod.object}: only functions that declared it`);
    });

    test('scaled Deployments drain for the longest step plus a margin, and scale in one pod a minute', () => {
      for (const so of objects.filter((o) => o.kind === 'ScaledObject')) {
        const spec = so.spec as { scaleTargetRef: { name: string }; advanced?: { horizontalPodAutoscalerConfig?: { behavior?: { scaleDown?: { stabilizationWindowSeconds?: number; policies?: Array<{ type: string; value: number; periodSeconds: number }> } } } } };
        const target = find(objects, 'Deployment', spec.scaleTargetRef.name);
        const fn = template(target).spec.containers[0].args!.at(-1)!;
        const agent = registry.get(fn)!;
        const longest = Math.max(...[...agent.steps.values()].map((s) => s.timeoutMs ?? agent.timeoutMs ?? 120_000));
        const budget = stepBudget(longest);
        const pod = template(target).spec;
        const drainMs = Number(envOf(pod.containers[0]).BATON_GRACE_MS?.value);
        const dispatching = pod.containers[0].args!.includes('--dispatch');
        const needS = dispatching ? budget.dispatchTimeoutS : budget.stepS + 30;
        assert.ok(drainMs >= needS * 1000, `${target.metadata.name}: drains ${drainMs} ms, needs ${needS} s`);
        assert.ok(pod.terminationGracePeriodSeconds! * 1000 > drainMs, 'Kubernetes waits longer than the drain');
        const down = spec.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown;
        assert.ok(down, `${so.metadata.name}: scale-down behaviour`);
        assert.ok((down.stabilizationWindowSeconds ?? 0) >= 60);
        assert.ok(down.policies?.length && down.policies.every((p) => p.type === 'Pods' && p.value === 1 && p.periodSeconds >= 60), 'one pod a minute at most');
      }
    });

    test('Redis caps its memory below the container limit and never evicts', (t) => {
      if (!('embedded' in config.redis)) return t.skip('external Redis');
      const redis = template(find(objects, 'Deployment', n.redis)).spec.containers[0];
      const args = redis.args!;
      const limit = redis.resources!.limits!.memory;
      const bytes = Number(args[args.indexOf('--maxmemory') + 1]);
      const limitBytes = Number.parseInt(limit, 10) * 1024 ** ({ Ki: 1, Mi: 2, Gi: 3 } as Record<string, number>)[limit.replace(/^\d+/, '')];
      assert.ok(bytes >= 0.7 * limitBytes && bytes <= 0.85 * limitBytes, `--maxmemory ${bytes} against a limit of ${limit}`);
      assert.equal(args[args.indexOf('--maxmemory-policy') + 1], 'noeviction');
    });

    test('tool servers run under tini, are ready only when they can serve, and get a ledger and a policy', () => {
      for (const server of Object.keys(config.tools)) {
        const pod = template(find(objects, 'Deployment', n.tool(server))).spec;
        const c = pod.containers[0];
        assert.deepEqual(c.command!.slice(0, 2), ['/usr/bin/tini', '--'], `${server} runs under tini`);
        assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
        const env = envOf(c);
        const policy = JSON.parse(env.BATON_TOOL_POLICY?.value ?? 'null') as { tenants?: unknown } | null;
        assert.ok(policy && typeof policy.tenants === 'object', `${server}: a policy is always rendered`);
        if (config.tools[server].ledger) {
          const ref = env.BATON_TOOL_LEDGER_URL?.valueFrom?.secretKeyRef;
          assert.ok(ref, `${server}: ledger URL from a Secret`);
          assert.notEqual(ref.name, n.appSecret, 'never the runtime database credentials');
        } else assert.equal(env.BATON_TOOL_LEDGER_URL, undefined);
        assert.ok(pod.terminationGracePeriodSeconds! >= 10);
      }
    });

    test('the git tool has its repository: a volume filled by an init container, or a claim', () => {
      const pod = template(find(objects, 'Deployment', n.tool('git'))).spec;
      const repo = envOf(pod.containers[0]).GIT_REPO.value!;
      const mount = pod.containers[0].volumeMounts!.find((m) => repo === m.mountPath || repo.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `GIT_REPO ${repo} is on a volume`);
      const volume = pod.volumes!.find((v) => v.name === mount.name)!;
      if (!volume.persistentVolumeClaim) {
        const init = pod.initContainers?.find((i) => i.volumeMounts?.some((m) => m.name === mount.name));
        assert.ok(init, 'an init container fills the repository volume');
        assert.match([...(init.command ?? []), ...(init.args ?? [])].join(' '), /\bgit\b.*\b(clone|init)\b/s, 'it makes the repository');
      }
    });

    test('the invoke credential: function pods and their dispatchers, from Secret <name>-invoke', () => {
      for (const pod of pods) {
        const env = envOf(pod.spec.containers![0] as Container);
        const wanted = pod.component === 'function' || pod.component === 'dispatcher';
        assert.deepEqual(env.BATON_INVOKE_TOKEN?.valueFrom?.secretKeyRef ?? null, wanted ? { name: `${config.name}-invoke`, key: 'token' } : null, pod.object);
      }
    });

    test('metrics: a port named metrics on 0.0.0.0, scrape annotations, never on the public Service', () => {
      for (const pod of pods.filter((p) => ['api', 'housekeeper', 'dispatcher', 'worker', 'function'].includes(p.component))) {
        const c = pod.spec.containers![0] as Container;
        const env = envOf(c);
        assert.equal(env.BATON_METRICS_PORT?.value, '9464', pod.object);
        assert.equal(env.BATON_METRICS_HOST?.value, '0.0.0.0', pod.object);
        // Knative allows one container port (the serving one): function pods are scraped by annotation only.
        if (pod.component !== 'function') assert.ok(c.ports?.some((p) => p.name === 'metrics' && p.containerPort === 9464), `${pod.object}: port metrics`);
        const annotations = (pod as unknown as { annotations?: Record<string, string> }).annotations ?? {};
        assert.equal(annotations['prometheus.io/scrape'], 'true', pod.object);
        assert.equal(annotations['prometheus.io/port'], '9464', pod.object);
      }
      const svc = find(objects, 'Service', n.api, 'v1').spec as { ports: Array<{ port: number; targetPort: unknown }> };
      assert.deepEqual(svc.ports.map((p) => p.targetPort), ['http']);
    });

    if (config.mode === 'knative') {
      test('Knative: default (aggressive) readiness probing, /tmp writable, dispatcher waits longer than Knative', () => {
        for (const fn of registry.keys()) {
          const ksvc = find(objects, 'Service', n.knativeService(fn), 'serving.knative.dev/v1');
          const spec = (ksvc.spec as { template: { spec: PodSpec & { timeoutSeconds: number } } }).template.spec;
          const c = spec.containers[0];
          assert.equal(c.readinessProbe?.periodSeconds, undefined, 'no periodSeconds on the Knative readiness probe');
          const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
          assert.ok(tmp && spec.volumes?.find((v) => v.name === tmp.name)?.emptyDir !== undefined, '/tmp is an emptyDir');
          const args = template(find(objects, 'Deployment', n.dispatcher(fn))).spec.containers[0].args!;
          const timeoutMs = Number(args[args.indexOf('--timeout-ms') + 1]);
          assert.ok(timeoutMs >= (spec.timeoutSeconds + 10) * 1000, `dispatcher timeout ${timeoutMs} ms vs Knative ${spec.timeoutSeconds} s`);
        }
      });
    }

    if (config.tools.github) {
      test('the GitHub token reaches the github tool as a mounted file, never as an env var', () => {
        const pod = template(find(objects, 'Deployment', n.tool('github'))).spec;
        const c = pod.containers[0];
        const file = envOf(c).GITHUB_TOKEN_FILE?.value;
        assert.ok(file, 'GITHUB_TOKEN_FILE is set');
        const mount = c.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`));
        assert.ok(mount?.readOnly, 'on a read-only mount');
        assert.equal(pod.volumes!.find((v) => v.name === mount.name)?.secret?.secretName, 'github-token');
        assert.equal(path.basename(file), 'token');
        assert.ok(!(c.envFrom ?? []).some((e) => e.secretRef?.name === 'github-token'), 'not envFrom');
        assert.equal(envOf(c).GITHUB_TOKEN, undefined);
        for (const other of pods.filter((p) => p.object !== `Deployment/${n.tool('github')}`)) {
          assert.ok(!JSON.stringify(other.spec).includes('github-token'), `${other.object} never sees it`);
        }
      });
    }
  });
}
