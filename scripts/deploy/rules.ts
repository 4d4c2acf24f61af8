/**
 * The rules an SRE checks before applying anything, checked once, here, on the
 * rendered objects (and by `baton deploy` before every apply, after the schemas and the
 * cross-references):
 *
 *   strings     every document decodes, with kubectl's YAML 1.1 reader, to exactly the
 *               object that was rendered (no `on`, `no` or `0777` turned bool or number)
 *   isolation   every pod the platform runs, operators' pods included, is selected by an
 *               Ingress NetworkPolicy
 *   drain       scaled pods drain for their longest step plus its margins, and Kubernetes
 *               waits longer than that; Knative's timeout covers the step, and the
 *               dispatcher waits longer than Knative; Knative's readiness probe keeps its
 *               default (aggressive) period
 *   scale-in    every ScaledObject removes at most one pod a minute, after a stable window
 *   memory      Redis caps its data below its container's memory limit and never evicts
 *   env         every variable a container reads is set, `$(VAR)` references name variables
 *               defined before them, and file paths in the env lie on a mounted volume
 */
import { isDeepStrictEqual } from 'node:util';
import type { FunctionRegistry } from '../../runtime/functions.ts';
import { DISPATCH_MARGIN_S, stepBudget } from '../lib/step-budget.ts';
import { podsOf } from './check-references.ts';
import type { DeployConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { names, toolUrlEnv } from './names.ts';
import { platformPods, selectedBy } from './network.ts';
import { decodeManifests, formatManifests } from './output.ts';
import { REDIS_MEMORY_SHARE } from './render-redis.ts';
import { bytesOf } from './render-security.ts';
import type { Problem } from './validate.ts';

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  envFrom?: unknown[];
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  resources?: { limits?: { memory?: string } };
  readinessProbe?: { periodSeconds?: number };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string }>;
  terminationGracePeriodSeconds?: number;
  timeoutSeconds?: number;
}

const BATON = ['DATABASE_URL', 'BATON_GRACE_MS', 'BATON_LOG_LEVEL'];
const QUEUE = [...BATON, 'REDIS_URL', 'BATON_REDIS_PREFIX', 'BATON_METRICS_PORT', 'BATON_METRICS_HOST'];
/** What each role's process reads (besides what Kubernetes or Knative inject). */
const READS: Record<string, string[]> = {
  api: [...QUEUE, 'PORT', 'HOST', 'BATON_AUTH'],
  housekeeper: QUEUE,
  migrate: BATON,
  dispatcher: [...QUEUE, 'BATON_CONCURRENCY', 'BATON_INVOKE_TOKEN'],
  worker: [...QUEUE, 'BATON_CONCURRENCY', 'BATON_TOOL_SIGNING_KEY'],
  function: [...QUEUE, 'BATON_CONCURRENCY', 'BATON_TOOL_SIGNING_KEY', 'BATON_INVOKE_TOKEN'],
  tool: ['PORT', 'HOST', 'BATON_TOOL_PUBLIC_KEY', 'BATON_TOOL_ALLOWED_HOSTS', 'BATON_TOOL_POLICY'],
  redis: ['REDIS_PASSWORD'],
};
/** Baton's own tool servers: one of each group must be set. */
const TOOL_READS: Record<string, string[][]> = { git: [['GIT_REPO']], github: [['GITHUB_TOKEN_FILE', 'GITHUB_TOKEN']] };
/** Variables that hold a path the process opens. */
const PATH_VARS = /(_FILE|^GIT_REPO)$/;

const under = (file: string, dir: string) => file === dir || file.startsWith(`${dir.replace(/\/$/, '')}/`);

export function checkRules(c: DeployConfig, objects: readonly Manifest[], registry: FunctionRegistry): Problem[] {
  const problems: Problem[] = [];
  const add = (object: string, path: string, message: string) => problems.push({ object, path, message });
  const n = names(c);

  // strings
  const decoded = decodeManifests(formatManifests(objects, 'yaml'));
  objects.forEach((o, i) => {
    if (!isDeepStrictEqual(decoded[i], JSON.parse(JSON.stringify(o)))) add(`${o.kind}/${o.metadata.name}`, '/', 'decodes differently in YAML 1.1 (kubectl): a string would become a bool or a number');
  });

  // isolation
  for (const pod of platformPods(objects)) if (!selectedBy(objects, pod).length) add(pod.object, '/', 'no NetworkPolicy selects this pod: anything in the cluster can connect to it');

  const longest = (fn: string) => {
    const agent = registry.get(fn);
    return agent ? stepBudget(Math.max(...[...agent.steps.values()].map((s) => s.timeoutMs ?? agent.timeoutMs ?? 120_000))) : null;
  };
  const byName = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const spec = (o: Manifest) => (o.spec as { template: { spec: PodSpec } }).template.spec;
  const env = (container: Container) => new Map((container.env ?? []).map((e) => [e.name, e.value]));

  // drain and scale-in
  for (const so of objects.filter((o) => o.kind === 'ScaledObject')) {
    const id = `ScaledObject/${so.metadata.name}`;
    const s = so.spec as { scaleTargetRef: { name: string }; advanced?: { horizontalPodAutoscalerConfig?: { behavior?: { scaleDown?: { stabilizationWindowSeconds?: number; policies?: Array<{ type: string; value: number; periodSeconds: number }> } } } } };
    const down = s.advanced?.horizontalPodAutoscalerConfig?.behavior?.scaleDown;
    if (!down || (down.stabilizationWindowSeconds ?? 0) < 60 || !down.policies?.length || down.policies.some((p) => p.type !== 'Pods' || p.value > 1 || p.periodSeconds < 60)) {
      add(id, '/spec/advanced', 'needs a scale-down behaviour: a stabilization window and at most one pod a minute');
    }
    const target = byName('Deployment', s.scaleTargetRef.name);
    if (!target) continue;
    const pod = spec(target);
    const main = pod.containers[0];
    const budget = longest(main.args?.at(-1) ?? '');
    if (!budget) continue;
    const dispatching = main.args?.includes('--dispatch');
    const needS = dispatching ? budget.dispatcherDrainS : budget.workerDrainS;
    const drainMs = Number(env(main).get('BATON_GRACE_MS'));
    const tid = `Deployment/${target.metadata.name}`;
    if (!(drainMs >= needS * 1000)) add(tid, '/spec/template/spec/containers/0/env', `drains ${drainMs} ms on SIGTERM; its longest step needs ${needS} s`);
    if (!((pod.terminationGracePeriodSeconds ?? 30) * 1000 > drainMs)) add(tid, '/spec/template/spec/terminationGracePeriodSeconds', 'must be longer than the drain (BATON_GRACE_MS)');
    if (dispatching) {
      const ksvc = objects.find((o) => o.apiVersion === 'serving.knative.dev/v1' && main.args?.includes(n.functionUrl(o.metadata.name)));
      const knativeS = ksvc ? (spec(ksvc).timeoutSeconds ?? 300) : 0;
      const timeoutMs = Number(main.args?.[main.args.indexOf('--timeout-ms') + 1]);
      if (!(timeoutMs >= (knativeS + DISPATCH_MARGIN_S) * 1000)) add(tid, '/spec/template/spec/containers/0/args', `request timeout ${timeoutMs} ms is not ${DISPATCH_MARGIN_S} s above Knative's ${knativeS} s`);
      if (ksvc && knativeS < budget.knativeTimeoutS) add(`Service/${ksvc.metadata.name}`, '/spec/template/spec/timeoutSeconds', `below the longest step plus its margin (${budget.knativeTimeoutS} s)`);
    }
  }
  for (const ksvc of objects.filter((o) => o.apiVersion === 'serving.knative.dev/v1')) {
    if (spec(ksvc).containers[0].readinessProbe?.periodSeconds !== undefined) {
      add(`Service/${ksvc.metadata.name}`, '/spec/template/spec/containers/0/readinessProbe', 'periodSeconds stops Knative probing aggressively at cold start');
    }
  }

  // memory
  const redis = byName('Deployment', n.redis);
  if (redis) {
    const args = spec(redis).containers[0].args ?? [];
    const limit = spec(redis).containers[0].resources?.limits?.memory;
    const max = Number(args[args.indexOf('--maxmemory') + 1]);
    const cap = limit ? bytesOf(limit) : 0;
    if (!args.includes('--maxmemory') || !(max > 0) || max > cap * Math.max(REDIS_MEMORY_SHARE, 0.9)) add(`Deployment/${n.redis}`, '/spec/template/spec/containers/0/args', `--maxmemory must be set below the memory limit (${limit})`);
    if (args[args.indexOf('--maxmemory-policy') + 1] !== 'noeviction') add(`Deployment/${n.redis}`, '/spec/template/spec/containers/0/args', '--maxmemory-policy must be noeviction (an evicted stream loses wake-ups)');
  }

  // env
  for (const pod of podsOf(objects)) {
    const p = pod.spec as unknown as PodSpec;
    const volumes = new Set((p.volumes ?? []).map((v) => v.name));
    if (volumes.size !== (p.volumes ?? []).length) add(pod.object, '/spec/template/spec/volumes', 'two volumes share a name');
    for (const container of [...(p.initContainers ?? []), ...p.containers]) {
      const where = `/spec/template/spec/containers/${container.name}`;
      const defined = new Set<string>(pod.component === 'function' ? ['PORT', 'K_REVISION'] : []);
      for (const e of container.env ?? []) {
        for (const [, ref] of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) if (!defined.has(ref)) add(pod.object, where, `${e.name} refers to $(${ref}), which is not defined before it`);
        defined.add(e.name);
        if (PATH_VARS.test(e.name) && e.value && !(container.volumeMounts ?? []).some((m) => under(e.value!, m.mountPath))) add(pod.object, where, `${e.name}=${e.value} is not on a mounted volume`);
      }
      for (const m of container.volumeMounts ?? []) if (!volumes.has(m.name)) add(pod.object, where, `mounts volume "${m.name}", which the pod does not define`);
      if (container !== p.containers[0]) continue;
      const wanted = [...(READS[pod.component] ?? []).map((v) => [v])];
      if (pod.component === 'tool') {
        const server = Object.keys(c.tools).find((s) => pod.object === `Deployment/${n.tool(s)}`);
        // What envFrom brings in cannot be seen here.
        if (server && !container.envFrom?.length) wanted.push(...(TOOL_READS[server] ?? []));
        if (server && c.tools[server].ledger) wanted.push(['BATON_TOOL_LEDGER_URL']);
      }
      if (pod.component === 'function' || pod.component === 'worker') {
        const agent = registry.get(container.args?.at(-1) ?? '');
        for (const server of Object.keys(agent?.tools ?? {})) wanted.push([toolUrlEnv(server)]);
      }
      for (const group of wanted) if (!group.some((v) => defined.has(v))) add(pod.object, where, `reads ${group.join(' or ')}, which is not set`);
    }
  }
  return problems;
}
