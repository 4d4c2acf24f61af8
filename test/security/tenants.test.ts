/**
 * Attack 4, tenants. Every /v1 route wants a key; tenant A's key gets 403 on every
 * route for tenant B's run (and 404 for a run that does not exist), sees only its own
 * runs, and cannot reach B's runs through an Idempotency-Key either. B's run is
 * untouched by all of it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { createApiKey, revokeApiKey } from '../../runtime/store/api-keys.ts';
import { type TestPlatform, startTestPlatform, waitForRun } from '../helpers/platform.ts';

const holder = defineAgent({
  name: 'holder',
  input: v.object({ n: v.number() }),
  start: 'hold',
  steps: { hold: (ctx) => (ctx.signal ? done({ got: ctx.signal.payload }) : wait('go')) },
});

let t: TestPlatform;
let keyA: string;
let keyB: string;

before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, functions: registryOf(holder), env: { BATON_AUTH: 'on' } });
  keyA = (await createApiKey(t.p.db, 'tenant-a')).key;
  keyB = (await createApiKey(t.p.db, 'tenant-b')).key;
});
after(() => t.close());

const call = (method: string, path: string, key: string | null, body?: unknown, headers: Record<string, string> = {}) =>
  t.api.request(path, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function startRun(key: string, n: number, headers: Record<string, string> = {}): Promise<string> {
  const res = await call('POST', '/v1/functions/holder/runs', key, { n }, headers);
  assert.equal(res.status, 202);
  return ((await res.json()) as { id: string }).id;
}

/** Every route that names a run. */
const runRoutes = (id: string): Array<[string, string, unknown?]> => [
  ['GET', `/v1/runs/${id}`],
  ['GET', `/v1/runs/${id}/events`],
  ['POST', `/v1/runs/${id}/cancel`],
  ['POST', `/v1/runs/${id}/retry`],
  ['POST', `/v1/runs/${id}/replay`, {}],
  ['POST', `/v1/runs/${id}/signals/go`, { approve: true }],
];

test("tenant A gets 403 on every route for tenant B's run, and B's run is untouched", async () => {
  const idB = await startRun(keyB, 1);
  await waitForRun(t.p, idB, ['waiting']);
  for (const [method, path, body] of runRoutes(idB)) {
    const res = await call(method, path, keyA, body);
    assert.equal(res.status, 403, `${method} ${path}`);
    const json = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(json.error.code, 'forbidden', `${method} ${path}`);
    assert.match(json.error.message, /belongs to another tenant/);
  }
  // Still waiting, for its own signal, with no replay made from it.
  const view = await call('GET', `/v1/runs/${idB}`, keyB);
  assert.equal(view.status, 200);
  assert.equal(((await view.json()) as { status: string }).status, 'waiting');
  const listB = (await (await call('GET', '/v1/runs', keyB)).json()) as { runs: Array<{ id: string }> };
  assert.deepEqual(listB.runs.map((r) => r.id), [idB]);
  // Its owner can still drive it.
  assert.equal((await call('POST', `/v1/runs/${idB}/signals/go`, keyB, { ok: 1 })).status, 202);
  const { run } = await waitForRun(t.p, idB);
  assert.deepEqual(run.output, { got: { ok: 1 } });
});

test('a run that does not exist is 404 on every route, a malformed id 400', async () => {
  for (const [method, path, body] of runRoutes('0190f5d2-0000-7000-8000-0000000000ff')) {
    const res = await call(method, path, keyA, body);
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'run_not_found');
  }
  for (const [method, path, body] of runRoutes('not-a-uuid')) {
    assert.equal((await call(method, path, keyA, body)).status, 400, `${method} ${path}`);
  }
});

test("listing shows only the caller's runs, and an Idempotency-Key never crosses tenants", async () => {
  const idA = await startRun(keyA, 2, { 'idempotency-key': 'same-key' });
  const idB = await startRun(keyB, 2, { 'idempotency-key': 'same-key' });
  assert.notEqual(idA, idB, "B's request made B's own run");
  const again = await call('POST', '/v1/functions/holder/runs', keyB, { n: 2 }, { 'idempotency-key': 'same-key' });
  assert.equal(((await again.json()) as { id: string }).id, idB);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');

  for (const [key, own, other] of [[keyA, idA, idB], [keyB, idB, idA]]) {
    const { runs } = (await (await call('GET', '/v1/runs?limit=1000', key)).json()) as { runs: Array<{ id: string }> };
    const ids = runs.map((r) => r.id);
    assert.ok(ids.includes(own));
    assert.ok(!ids.includes(other));
    const filtered = (await (await call('GET', '/v1/runs?function=holder&status=waiting', key)).json()) as { runs: Array<{ id: string }> };
    assert.ok(!filtered.runs.some((r) => r.id === other));
  }
});

test('every /v1 route wants a valid key: none, malformed, unknown and revoked keys get 401', async () => {
  const idA = await startRun(keyA, 3);
  const revoked = await createApiKey(t.p.db, 'tenant-a');
  await revokeApiKey(t.p.db, revoked.id);
  const unknown = `bk_00000000_${'A'.repeat(32)}`;
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/v1/functions'],
    ['GET', '/v1/functions/holder'],
    ['POST', '/v1/functions/holder/runs', { n: 1 }],
    ['GET', '/v1/runs'],
    ['GET', '/v1/nope'],
    ...runRoutes(idA),
  ];
  const headersToTry: Array<[string, Record<string, string>]> = [
    ['no key', {}],
    ['Basic auth', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['unknown key', { authorization: `Bearer ${unknown}` }],
    ['revoked key', { authorization: `Bearer ${revoked.key}` }],
    ['key with junk after it', { authorization: `Bearer ${keyA} extra` }],
  ];
  for (const [what, headers] of headersToTry) {
    for (const [method, path, body] of routes) {
      const res = await call(method, path, null, body, headers);
      assert.equal(res.status, 401, `${what}: ${method} ${path}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthorized');
    }
  }
  // The run was never touched by any of it.
  assert.equal((await waitForRun(t.p, idA, ['waiting'])).run.status, 'waiting');
});

test('responses carry security headers and are not cached', async () => {
  for (const res of [await call('GET', '/v1/runs', keyA), await call('GET', '/v1/runs', null), await call('GET', '/healthz', null)]) {
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY'); // nothing here is meant to be framed (the inspector included)
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  }
  assert.equal((await call('GET', '/v1/runs', keyA)).headers.get('cache-control'), 'no-store');
  assert.equal((await call('GET', '/v1/runs', null)).headers.get('cache-control'), 'no-store');
});

test('bodies: over 1 MiB is 413, not JSON is 415, broken JSON 400, a wrong field 400 naming it', async () => {
  const big = await call('POST', '/v1/functions/holder/runs', keyA, { n: 1, pad: 'x'.repeat(1024 * 1024) });
  assert.equal(big.status, 413);
  const text = await t.api.request('/v1/functions/holder/runs', { method: 'POST', headers: { authorization: `Bearer ${keyA}`, 'content-type': 'text/plain' }, body: '{"n":1}' });
  assert.equal(text.status, 415);
  const broken = await t.api.request('/v1/functions/holder/runs', { method: 'POST', headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' }, body: '{"n":' });
  assert.equal(broken.status, 400);
  assert.equal(((await broken.json()) as { error: { code: string } }).error.code, 'invalid_json');
  const wrong = await call('POST', '/v1/functions/holder/runs', keyA, { n: 'one' });
  assert.equal(wrong.status, 400);
  assert.match(((await wrong.json()) as { error: { message: string } }).error.message, /^input\.n: /);
  // Query strings too: a date PostgreSQL cannot hold is the client's mistake, not a 500.
  for (const q of ['before=0000-01-01T00:00:00Z', 'before=yesterday', 'limit=0', 'status=nope', 'function=%00']) {
    const res = await call('GET', `/v1/runs?${q}`, keyA);
    assert.equal(res.status, 400, q);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /^query\./, q);
  }
});
