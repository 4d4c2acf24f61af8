/**
 * The apply path against a recording stand-in for kubectl: prerequisites are named
 * when a CRD is missing, generated Secrets are created from files (never on a command
 * line) only when absent, phases go in order with the migration Job awaited before
 * the API and functions, and KEDA-scaled Deployments are not awaited.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { renderValidated } from '../commands/deploy.ts';
import { type Kubectl, applyPhases, checkPrerequisites, routedRevisions } from './apply.ts';
import { loadDeployConfig, parseConfig } from './config.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function fakeKubectl(opts: { crds?: string[]; secrets?: string[]; ksvc?: unknown } = {}) {
  const calls: Array<{ args: string[]; input?: string }> = [];
  const k: Kubectl = async (args, input) => {
    calls.push({ args, input });
    if (args[0] === 'get' && args[1] === 'crd') {
      const have = opts.crds ?? args.slice(2).filter((a) => a.includes('.'));
      return { code: 0, stdout: have.map((c) => `customresourcedefinition.apiextensions.k8s.io/${c}\n`).join(''), stderr: '' };
    }
    const get = args.indexOf('get');
    if (get >= 0 && args[get + 1] === 'secret') {
      const asked = args.slice(get + 2).filter((a, i, all) => !a.startsWith('-') && !all[i - 1]?.startsWith('-o'));
      return { code: 0, stdout: asked.filter((s) => (opts.secrets ?? []).includes(s)).map((s) => `secret/${s}\n`).join(''), stderr: '' };
    }
    if (get >= 0 && args[get + 1] === 'services.serving.knative.dev') return { code: 0, stdout: opts.ksvc ? JSON.stringify(opts.ksvc) : '', stderr: '' };
    return { code: 0, stdout: args.includes('apply') ? 'applied\n' : '', stderr: '' };
  };
  return { k, calls };
}

test('a missing operator is named, with how to get past it', async () => {
  const config = await loadDeployConfig(ROOT, { mode: 'knative' });
  const { k } = fakeKubectl({ crds: ['clusters.postgresql.cnpg.io', 'poolers.postgresql.cnpg.io'] });
  await assert.rejects(checkPrerequisites(k, config), (err: Error) => {
    assert.match(err.message, /scaledobjects\.keda\.sh: install KEDA/);
    assert.match(err.message, /services\.serving\.knative\.dev: install Knative Serving/);
    assert.match(err.message, /--mode worker/);
    return true;
  });
  const worker = await loadDeployConfig(ROOT, { mode: 'worker' });
  const all = fakeKubectl({ crds: ['clusters.postgresql.cnpg.io', 'poolers.postgresql.cnpg.io', 'scaledobjects.keda.sh', 'triggerauthentications.keda.sh'] });
  await checkPrerequisites(all.k, worker);
});

test('phases apply in order, server-side; secrets are made once, from files; the Job is awaited before the API', async () => {
  const config = await loadDeployConfig(ROOT, { mode: 'knative' });
  const rendered = await renderValidated(config, []);
  const { k, calls } = fakeKubectl({ secrets: ['baton-redis'] });
  await applyPhases(k, config, rendered, () => {});
  const applies = calls.filter((c) => c.args[0] === 'apply');
  assert.equal(applies.length, rendered.phases.filter((p) => p.objects.length).length);
  for (const a of applies) assert.deepEqual(a.args.slice(0, 2), ['apply', '--server-side']);
  const creates = calls.filter((c) => c.args.includes('create'));
  assert.deepEqual(creates.map((c) => c.args[c.args.indexOf('generic') + 1]), ['baton-invoke', 'baton-tool-signing-key', 'baton-tool-public-key']);
  for (const c of creates) {
    assert.ok(c.args.some((a) => a.startsWith('--from-file=')));
    assert.ok(!c.args.some((a) => a.includes('PRIVATE KEY') || a.startsWith('--from-literal')));
  }
  const order = calls.map((c) => c.args.join(' '));
  const jobWait = order.findIndex((a) => a.includes('--for=condition=complete') && a.includes('job/baton-migrate-'));
  const apiApply = calls.findIndex((c) => c.args[0] === 'apply' && !!c.input?.includes('kind: Deployment') && c.input.includes('name: baton-api\n'));
  assert.ok(jobWait > 0 && apiApply > jobWait, 'the migration completes before the API is applied');
  assert.ok(!order.some((a) => a.includes('rollout status deployment/pr-review-dispatcher')), 'KEDA owns the dispatcher');
  assert.ok(order.some((a) => a.includes('rollout status deployment/baton-api')));
});

test('a Secret the config names but nobody created is named before anything is applied', async () => {
  const base = await loadDeployConfig(ROOT, { mode: 'knative' });
  const config = parseConfig({ ...base, tools: { ...base.tools, github: { secretFiles: { GITHUB_TOKEN_FILE: { secret: 'github-token', key: 'token' } } } } });
  const rendered = await renderValidated(config, []);
  const { k, calls } = fakeKubectl({ secrets: ['baton-redis'] });
  await assert.rejects(applyPhases(k, config, rendered, () => {}), /names Secrets that do not exist in namespace baton: github-token/);
  assert.ok(!calls.some((c) => c.args[0] === 'apply'), 'nothing applied');
  const ok = fakeKubectl({ secrets: ['baton-redis', 'github-token'] });
  await applyPhases(ok.k, config, rendered, () => {});
});

test('the invoke credential is generated once, never in a manifest, and only where functions run on Knative', async () => {
  const knative = await loadDeployConfig(ROOT, { mode: 'knative' });
  const { k, calls } = fakeKubectl({ secrets: ['baton-redis', 'baton-invoke', 'baton-tool-signing-key', 'baton-tool-public-key'] });
  await applyPhases(k, knative, await renderValidated(knative, []), () => {});
  assert.ok(!calls.some((c) => c.args.includes('create')), 'kept on re-deploy');
  assert.ok(!calls.some((c) => c.input?.includes('kind: Secret')));
  const worker = await loadDeployConfig(ROOT, { mode: 'worker' });
  const w = fakeKubectl({ secrets: ['baton-redis'] });
  await applyPhases(w.k, worker, await renderValidated(worker, []), () => {});
  assert.ok(!w.calls.some((c) => c.args.includes('baton-invoke') && c.args.includes('create')));
});

test('routed revisions are kept on re-deploy, unless retired', async () => {
  const config = await loadDeployConfig(ROOT, { mode: 'knative' });
  const ksvc = { spec: { traffic: [{ revisionName: 'pr-review-aaaa1111', tag: 'r-aaaa1111', percent: 100 }, { revisionName: 'pr-review-bbbb2222', tag: 'r-bbbb2222', percent: 0 }] } };
  const { k } = fakeKubectl({ ksvc });
  assert.deepEqual(await routedRevisions(k, config, ['pr-review'], []), { 'pr-review': ['pr-review-aaaa1111', 'pr-review-bbbb2222'] });
  assert.deepEqual(await routedRevisions(k, config, ['pr-review'], ['pr-review-bbbb2222']), { 'pr-review': ['pr-review-aaaa1111'] });
  const rendered = await renderValidated(config, [], { 'pr-review': ['pr-review-aaaa1111'] });
  const service = rendered.phases.at(-1)!.objects.find((o) => o.metadata?.name === 'pr-review')!;
  const traffic = (service.spec as { traffic: Array<{ revisionName: string; percent: number }> }).traffic;
  assert.deepEqual(traffic.map((t) => t.percent), [100, 0]);
  assert.equal(traffic[1].revisionName, 'pr-review-aaaa1111');
});
