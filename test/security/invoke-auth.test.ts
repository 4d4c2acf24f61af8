/**
 * POST /invoke (Knative mode) runs a step of any run by id: without a credential,
 * anything in the cluster could fail another tenant's run. The function app requires
 * the dispatcher's shared secret (BATON_INVOKE_TOKEN, a Kubernetes Secret), compared
 * in constant time, and the API's body limit; the dispatcher sends it; a function or
 * dispatcher started without it refuses to start.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { MAX_BODY_BYTES } from '../../runtime/api/body.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { createDispatch } from '../../scripts/lib/dispatch.ts';
import { type Served, serveApp } from '../../scripts/lib/serve.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';
import { ROOT, spawnNode } from '../helpers/spawn.ts';

const TOKEN = 'k'.repeat(43);
let t: TestPlatform;
let served: Served;

before(async () => {
  t = await startTestPlatform({
    worker: false,
    llm: { reply: () => 'fine' },
    functions: await loadFunctions(`${ROOT}/functions`, ['pr-review']),
    env: { BATON_INVOKE_TOKEN: TOKEN },
  });
  served = await serveApp(createInvokeApp(t.p, { worker: 'fn-pod' }), 0, '127.0.0.1');
});
after(async () => {
  await served?.close(100);
  await t.close();
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${served.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

test('an invocation without the credential, or with a wrong one, is refused and runs nothing', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 1 });
  const envelope = JSON.stringify({ run_id: id, seq: 0 });
  for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${'x'.repeat(43)}` }, { authorization: `Bearer ${TOKEN}x` }, { authorization: TOKEN }, { authorization: 'Bearer ' }]) {
    for (const path of ['/invoke', '/invoke/pr-review']) {
      const res = await post(path, envelope, headers);
      assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'unauthorized');
    }
  }
  const full = await getRunWithSteps(t.p.db, id);
  assert.equal(full?.run.status, 'queued', 'no step ran');
  assert.equal(full?.attempts.length, 0);
});

test('the dispatcher sends the credential: its steps run', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 2 });
  const dispatch = createDispatch(t.p, { url: `${served.url}/invoke`, timeoutMs: 10_000 });
  const outcome = await dispatch({ function: 'pr-review', message: { runId: id, seq: 0 } } as Parameters<typeof dispatch>[0], new AbortController().signal);
  assert.equal(outcome.status, 'committed', JSON.stringify(outcome));
});

test('a body over the API limit is refused with 413 before it is read', async () => {
  const res = await post('/invoke', `{"run_id":"${'a'.repeat(MAX_BODY_BYTES)}","seq":0}`, { authorization: `Bearer ${TOKEN}` });
  assert.equal(res.status, 413);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'payload_too_large');
});

test('a function app without a configured credential refuses every invocation', async () => {
  const open = createInvokeApp(t.p, { worker: 'fn-pod', token: null });
  const res = await open.request('/invoke', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' }, body: '{}' });
  assert.equal(res.status, 401);
  assert.equal((await open.request('/healthz')).status, 200, 'probes still answer');
});

test('`baton worker --serve` and `--dispatch` refuse to start without BATON_INVOKE_TOKEN, or with a short one', async () => {
  const env = { ...t.env, BATON_INVOKE_TOKEN: '', BATON_FUNCTIONS_DIR: 'functions', HOST: '127.0.0.1', PORT: '0', BATON_METRICS_PORT: 'off' };
  for (const [args, extra] of [
    [['worker', '--serve', 'pr-review'], {}],
    [['worker', 'pr-review', '--dispatch', 'http://127.0.0.1:9/invoke'], {}],
    [['worker', '--serve', 'pr-review'], { BATON_INVOKE_TOKEN: 'short' }],
  ] as const) {
    const child = spawnNode(['scripts/baton.ts', ...args], { ...env, ...extra });
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', (c) => resolve(c)));
    assert.notEqual(code, 0, args.join(' '));
    assert.match(child.stderr(), /BATON_INVOKE_TOKEN/, child.stderr());
  }
});
