/**
 * One client cannot exhaust the API: per-tenant quotas on new runs per minute and on
 * live runs, and a slowing-down of addresses that keep sending bad keys, all counted
 * in Redis and therefore shared by every API replica (two `baton api` processes here);
 * unknown keys are remembered in a bounded cache that a flood of made-up keys cannot
 * empty of the good ones.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { createApi } from '../../runtime/api/app.ts';
import { createApiKey } from '../../runtime/store/api-keys.ts';
import { type TestPlatform, startTestPlatform, waitFor } from '../helpers/platform.ts';
import { type BatonProcess, startApiProcess, stopAll } from '../helpers/processes.ts';

let t: TestPlatform;
const procs: BatonProcess[] = [];
let apis: string[] = [];

before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, worker: false, env: { BATON_AUTH: 'on' } });
  const env = {
    ...t.env,
    BATON_AUTH: 'on',
    BATON_FUNCTIONS_DIR: 'functions',
    BATON_TENANT_RUNS_PER_MIN: '6',
    BATON_TENANT_MAX_ACTIVE_RUNS: '4',
    BATON_AUTH_FAILURES_PER_MIN: '10',
  };
  const a = await startApiProcess(env);
  const b = await startApiProcess(env);
  procs.push(a, b);
  apis = [a.url, b.url];
});
after(async () => {
  await stopAll(procs, 'SIGTERM');
  await t.close();
});

const start = (api: string, key: string) =>
  fetch(`${api}/v1/functions/chain/runs`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"steps":1}' });

type ErrorBody = { error: { code: string; message: string; details: { quota?: string; env?: string } } };

test('live runs per tenant: beyond BATON_TENANT_MAX_ACTIVE_RUNS on any replica, 429 quota_exceeded naming the quota; a run that ends frees a place', async () => {
  const { key } = await createApiKey(t.p.db, 'busy');
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await start(apis[i % 2], key);
    assert.equal(res.status, 202, `run ${i + 1} of 4`);
    ids.push(((await res.json()) as { id: string }).id);
  }
  for (const api of apis) {
    const res = await start(api, key);
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1, 'Retry-After');
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'quota_exceeded');
    assert.equal(body.error.details.quota, 'active_runs');
    assert.match(body.error.message, /BATON_TENANT_MAX_ACTIVE_RUNS/);
  }
  // Another tenant is not held back.
  const other = await createApiKey(t.p.db, 'calm');
  assert.equal((await start(apis[1], other.key)).status, 202);

  const cancel = await fetch(`${apis[0]}/v1/runs/${ids[0]}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  assert.equal(cancel.status, 200);
  // The live count is refreshed from PostgreSQL within seconds; then one place is free again, and only one.
  await waitFor(async () => (await start(apis[1], key)).status === 202, 'a place after the cancel', 20_000);
  assert.equal((await start(apis[0], key)).status, 429);
});

test('new runs per minute per tenant: a sliding window shared by both replicas', async () => {
  const { key } = await createApiKey(t.p.db, 'eager');
  for (let i = 0; i < 4; i++) {
    const res = await start(apis[i % 2], key);
    assert.equal(res.status, 202);
    // Keep under the live-run quota: end each run at once.
    const { id } = (await res.json()) as { id: string };
    await fetch(`${apis[0]}/v1/runs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  }
  // Refused runs do not count: the fifth is admitted once the live count sees the cancels.
  await waitFor(async () => (await start(apis[1], key)).status === 202, 'the fifth run', 20_000);
  assert.equal((await start(apis[0], key)).status, 202, 'the sixth');
  for (const api of apis) {
    const res = await start(api, key);
    assert.equal(res.status, 429);
    const body = (await res.json()) as ErrorBody;
    assert.equal(body.error.code, 'quota_exceeded');
    assert.equal(body.error.details.quota, 'runs_per_minute');
    assert.match(body.error.message, /BATON_TENANT_RUNS_PER_MIN/);
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
  }
});

test('unknown keys: a flood of made-up keys neither reaches the database twice per key nor evicts the good keys', async () => {
  const { key } = await createApiKey(t.p.db, 'steady');
  let lookups = 0;
  const api = createApi({
    ...t.p,
    // Long enough that the flood below cannot outlast it on a slow machine.
    config: { ...t.p.config, limits: { ...t.p.config.limits, authCacheMs: 600_000 } },
    withDb: (fn, budget) => {
      lookups++;
      return t.p.withDb(fn, budget);
    },
  });
  const get = (k: string) => api.request('/v1/runs', { headers: { authorization: `Bearer ${k}` } });
  assert.equal((await get(key)).status, 200);
  const wrong = `bk_00000000_${'A'.repeat(32)}`;
  for (let i = 0; i < 20; i++) assert.equal((await get(wrong)).status, 401);
  const afterWrong = lookups;
  assert.ok(afterWrong <= 3, `one lookup for the good key, one for the wrong one (and the route's), got ${afterWrong}`);

  // More made-up keys than the cache holds (10,000): the good key stays cached.
  const made = () => `bk_${crypto.randomBytes(4).toString('hex')}_${crypto.randomBytes(24).toString('base64url')}`;
  for (let i = 0; i < 10_050; i++) await get(made());
  const before = lookups;
  assert.equal((await get(key)).status, 200);
  assert.equal(lookups - before, 1, 'only the route read the database: the good key was still cached');
});

test('repeated 401s from one address: 429 with Retry-After from every replica, until the window slides', async () => {
  const bad = `bk_11111111_${'B'.repeat(32)}`;
  const get = (api: string, k: string) => fetch(`${api}/v1/runs`, { headers: { authorization: `Bearer ${k}` } });
  for (let i = 0; i < 10; i++) assert.equal((await get(apis[i % 2], i % 3 === 0 ? 'nonsense' : bad)).status, 401, `failure ${i + 1}`);
  for (const api of apis) {
    const res = await get(api, bad);
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'too_many_auth_failures');
  }
  // A key not yet known to a replica is refused too while the address is held back (checked before any lookup).
  const { key } = await createApiKey(t.p.db, 'late');
  assert.equal((await get(apis[0], key)).status, 429);
});
