/**
 * Each platform rule must be able to fail: break one thing in an otherwise valid
 * render of the demo and the rule names it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, test } from 'node:test';
import YAML from 'yaml';
import { loadConfig } from '../../runtime/config.ts';
import { type FunctionRegistry, loadFunctions } from '../../runtime/functions.ts';
import { type DeployConfig, loadDeployConfig } from './config.ts';
import type { Manifest } from './manifest.ts';
import { decodeManifests } from './output.ts';
import { planDeploy } from './plan.ts';
import { allObjects, render } from './render.ts';
import { checkRules } from './rules.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let registry: FunctionRegistry;
const configs: Record<string, DeployConfig> = {};

before(async () => {
  registry = await loadFunctions(loadConfig({}).functionsDir);
  for (const mode of ['knative', 'worker'] as const) configs[mode] = await loadDeployConfig(ROOT, { mode });
});

type Container = { name: string; args: string[]; env: Array<{ name: string; value?: string }>; readinessProbe?: Record<string, unknown> };
type Pod = { containers: Container[]; terminationGracePeriodSeconds?: number };

/** Renders the demo, lets `breakIt` change it, and returns the rules' messages. */
function broken(mode: 'knative' | 'worker', breakIt: (objects: Manifest[]) => void): string[] {
  const objects = structuredClone(allObjects(render(planDeploy(configs[mode], registry))));
  assert.deepEqual(checkRules(configs[mode], objects, registry), [], 'the unbroken render passes');
  breakIt(objects);
  return checkRules(configs[mode], objects, registry).map((p) => `${p.object}: ${p.message}`);
}
const pod = (objects: Manifest[], kind: string, name: string) =>
  (objects.find((o) => o.kind === kind && o.metadata.name === name)!.spec as { template: { spec: Pod } }).template.spec;
const setEnv = (c: Container, name: string, value: string | undefined) => {
  c.env = c.env.filter((e) => e.name !== name);
  if (value !== undefined) c.env.push({ name, value });
};

test('strings: YAML 1.2 output would decode differently (what the rule guards against)', () => {
  const redis = allObjects(render(planDeploy(configs.knative, registry))).find((o) => o.kind === 'Deployment' && o.metadata.name === 'baton-redis')!;
  const [decoded] = decodeManifests(YAML.stringify(redis));
  assert.notDeepEqual(decoded, JSON.parse(JSON.stringify(redis)));
});

test('isolation: a pod no NetworkPolicy selects is named', () => {
  const p = broken('knative', (o) => o.splice(o.findIndex((x) => x.kind === 'NetworkPolicy' && x.metadata.name === 'baton-db-pooler-rw'), 1));
  assert.deepEqual(p, ['Pooler/baton-db-pooler-rw: no NetworkPolicy selects this pod: anything in the cluster can connect to it']);
  const q = broken('worker', (o) => o.splice(o.findIndex((x) => x.kind === 'NetworkPolicy' && x.metadata.name === 'baton-worker'), 1));
  assert.ok(q.length >= 1 && q.every((m) => m.startsWith('Deployment/') && m.includes('-worker: no NetworkPolicy')));
});

test('drain: a worker that drains less than its longest step, or a grace period under the drain', () => {
  const p = broken('worker', (o) => setEnv(pod(o, 'Deployment', 'pr-review-worker').containers[0], 'BATON_GRACE_MS', '25000'));
  assert.ok(p.some((m) => /pr-review-worker: drains 25000 ms on SIGTERM; its longest step needs 150 s/.test(m)), p.join('\n'));
  const q = broken('worker', (o) => (pod(o, 'Deployment', 'pr-review-worker').terminationGracePeriodSeconds = 40));
  assert.ok(q.some((m) => m.includes('must be longer than the drain')));
});

test('drain: a dispatcher that gives up before Knative does; a Knative probe period', () => {
  const p = broken('knative', (o) => {
    const args = pod(o, 'Deployment', 'pr-review-dispatcher').containers[0].args;
    args[args.indexOf('--timeout-ms') + 1] = '150000';
  });
  assert.ok(p.some((m) => m.includes("request timeout 150000 ms is not 15 s above Knative's 150 s")), p.join('\n'));
  const q = broken('knative', (o) => (pod(o, 'Service', 'pr-review').containers[0].readinessProbe = { httpGet: { path: '/healthz' }, periodSeconds: 5 }));
  assert.ok(q.some((m) => m.includes('periodSeconds stops Knative probing aggressively')));
});

test('scale-in: a ScaledObject without scale-down behaviour, or one that drops many pods at once', () => {
  const p = broken('knative', (o) => delete (o.find((x) => x.kind === 'ScaledObject')!.spec as Record<string, unknown>).advanced);
  assert.ok(p.some((m) => m.includes('needs a scale-down behaviour')));
  const q = broken('knative', (o) => {
    const so = o.find((x) => x.kind === 'ScaledObject')!.spec as { advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { policies: unknown[] } } } } };
    so.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.policies = [{ type: 'Percent', value: 100, periodSeconds: 15 }];
  });
  assert.ok(q.some((m) => m.includes('at most one pod a minute')));
});

test('memory: Redis without --maxmemory, or with an evicting policy', () => {
  const p = broken('knative', (o) => {
    const c = pod(o, 'Deployment', 'baton-redis').containers[0];
    c.args = c.args.filter((a, i, all) => a !== '--maxmemory' && all[i - 1] !== '--maxmemory');
  });
  assert.ok(p.some((m) => m.includes('--maxmemory must be set')));
  const q = broken('knative', (o) => {
    const args = pod(o, 'Deployment', 'baton-redis').containers[0].args;
    args[args.indexOf('--maxmemory-policy') + 1] = 'allkeys-lru';
  });
  assert.ok(q.some((m) => m.includes('must be noeviction')));
});

test('env: a variable the process reads, a $(VAR) defined too late, a file path off every mount', () => {
  const p = broken('knative', (o) => setEnv(pod(o, 'Deployment', 'baton-api').containers[0], 'DATABASE_URL', undefined));
  assert.ok(p.some((m) => m === 'Deployment/baton-api: reads DATABASE_URL, which is not set'), p.join('\n'));
  const q = broken('knative', (o) => {
    const c = pod(o, 'Deployment', 'baton-housekeeper').containers[0];
    c.env.unshift({ name: 'EARLY', value: 'x$(PGPASSWORD)' });
  });
  assert.ok(q.some((m) => m.includes('EARLY refers to $(PGPASSWORD), which is not defined before it')));
  const r = broken('knative', (o) => setEnv(pod(o, 'Deployment', 'baton-tool-git').containers[0], 'GIT_REPO', '/srv/elsewhere'));
  assert.ok(r.some((m) => m.includes('GIT_REPO=/srv/elsewhere is not on a mounted volume')));
  const s = broken('knative', (o) => setEnv(pod(o, 'Service', 'pr-review').containers[0], 'BATON_INVOKE_TOKEN', undefined));
  assert.ok(s.some((m) => m === 'Service/pr-review: reads BATON_INVOKE_TOKEN, which is not set'));
});
