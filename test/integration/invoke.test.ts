/**
 * A function served as its own Hono app: POST /invoke runs one step for a
 * { run_id, seq } envelope — the worker's code path, driven by hand here.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { TEST_INVOKE_TOKEN, type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { ROOT } from '../helpers/processes.ts';

let t: TestPlatform;
let app: ReturnType<typeof createInvokeApp>;
before(async () => {
  // One function, as in a Knative Service: its app answers a bare POST /invoke.
  t = await startTestPlatform({ worker: false, llm: { reply: () => 'fine' }, functions: await loadFunctions(`${ROOT}/functions`, ['pr-review']) });
  app = createInvokeApp(t.p, { worker: 'invoke-test' });
});
after(() => t.close());

const invoke = async (body: unknown) => {
  const res = await app.request('/invoke', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_INVOKE_TOKEN}` }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { outcome?: { status: string; nextSeq?: number }; error?: { code: string } } };
};

test('three invocations run the three steps; a repeated envelope is skipped', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 9 });
  for (const seq of [0, 1, 2]) {
    const { status, body } = await invoke({ run_id: id, seq });
    assert.equal(status, 200);
    assert.equal(body.outcome?.status, 'committed', JSON.stringify(body));
  }
  const again = await invoke({ run_id: id, seq: 1 });
  assert.equal(again.body.outcome?.status, 'skipped');
  const full = await getRunWithSteps(t.p.db, id);
  assert.equal(full?.run.status, 'succeeded');
  assert.deepEqual(full?.steps.map((s) => s.worker), ['invoke-test', 'invoke-test', 'invoke-test']);
});

test('a bad envelope is a 400 naming the field', async () => {
  const bad = await invoke({ run_id: 'nope', seq: 0 });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error?.code, 'invalid_request');
  const neg = await invoke({ run_id: '01900000-0000-7000-8000-000000000000', seq: -1 });
  assert.equal(neg.status, 400);
});
