/**
 * Attack 6, fuzzing the API: 2,000 requests from a seeded generator (the same seed
 * gives the same requests) across every route — bad JSON, wrong types, huge strings,
 * unicode, deep nesting, missing fields, wrong methods, bad ids, odd content types and
 * keys, oversized bodies. No answer may be a 5xx, every error must be the JSON error
 * shape, and the API must still serve normally afterwards. The tally is printed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { createApiKey } from '../../runtime/store/api-keys.ts';
import { body, junkString, latin1, pct, prng, type Rng } from '../helpers/fuzz.ts';
import { type TestPlatform, startTestPlatform } from '../helpers/platform.ts';

// FUZZ_REQUESTS and FUZZ_SEED explore further locally; the suite runs the same 2,000 every time.
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

const holder = defineAgent({
  name: 'holder',
  input: v.object({ n: v.number() }),
  start: 'hold',
  steps: { hold: (ctx) => (ctx.signal ? done(ctx.signal.payload) : wait('go')) },
});
const strict = defineAgent({
  name: 'strict',
  input: v.object({
    repo: v.pipe(v.string(), v.regex(/^[a-z]+\/[a-z]+$/)),
    pr: v.pipe(v.number(), v.integer(), v.minValue(1)),
    labels: v.optional(v.array(v.picklist(['bug', 'feature']))),
    meta: v.optional(v.record(v.string(), v.unknown())),
  }),
  start: 'go',
  steps: { go: () => done(null) },
});

let t: TestPlatform;
let keyA: string;
let keyB: string;
const runsA: string[] = [];
const runsB: string[] = [];

before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, worker: false, functions: registryOf(holder, strict), env: { BATON_AUTH: 'on' } });
  keyA = (await createApiKey(t.p.db, 'fuzz-a')).key;
  keyB = (await createApiKey(t.p.db, 'fuzz-b')).key;
  for (const [key, list] of [[keyA, runsA], [keyB, runsB]] as const) {
    for (let i = 0; i < 4; i++) {
      const res = await t.api.request('/v1/functions/holder/runs', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ n: i }) });
      list.push(((await res.json()) as { id: string }).id);
    }
  }
});
after(() => t.close());

function generate(r: Rng): { path: string; init: RequestInit; what: string } {
  const fn = r.pick(['holder', 'strict', 'holder', 'strict', 'nope', junkString(r).slice(0, 300), '..', '%2e%2e', 'holder%00', '%ZZ']);
  const id = r.pick([...runsA, ...runsA, ...runsB, '0190f5d2-0000-7000-8000-000000000000', 'not-a-uuid', '', junkString(r).slice(0, 2000), '%ZZ', "1' or '1'='1", '00000000-0000-0000-0000-000000000000']);
  const sig = r.pick(['go', 'go', 'other', 'bad name', 'x'.repeat(300), '%00', '🙂']);
  const query = r.pick([
    '',
    `?limit=${r.pick(['0', '-1', '1', '1000', '1001', '99999999999', 'abc', '', '1e3'])}`,
    `?status=${r.pick(['queued', 'waiting', 'nope', ''])}`,
    `?before=${pct(r.pick(['2020-02-31T00:00:00Z', '2026-11-28T10:00:00Z', '9999-99-99', '+275760-09-13T00:00:00.000Z', '0000-01-01T00:00:00Z', 'yesterday', '2026-13-01T00:00:00Z']))}`,
    `?function=${pct(junkString(r).slice(0, 500))}`,
    '?limit=1&limit=2&status=queued&status=x',
    `?lastEventId=${r.pick(['end', '1-1-1', 'x', '-1'])}`,
  ]);
  const enc = (s: string) => (r.chance(0.5) ? pct(s) : s.replace(/[?#\s]/g, 'x'));
  const path = r.pick([
    '/v1/functions',
    `/v1/functions/${enc(fn)}`,
    `/v1/functions/${enc(fn)}/runs`,
    `/v1/functions/${enc(fn)}/runs`,
    `/v1/functions/${enc(fn)}/runs`,
    `/v1/runs${query}`,
    `/v1/runs/${enc(id)}`,
    `/v1/runs/${enc(id)}/events${query}`,
    `/v1/runs/${enc(id)}/cancel`,
    `/v1/runs/${enc(id)}/retry`,
    `/v1/runs/${enc(id)}/replay`,
    `/v1/runs/${enc(id)}/signals/${enc(sig)}`,
    `/v1/${enc(junkString(r).slice(0, 100))}`,
    '/v1',
    '/v1/',
    '/v2/runs',
    '/healthz',
    '/nope',
    '//v1//runs',
  ]);
  const method = r.chance(0.7) ? (/(runs|cancel|retry|replay|signals\/[^/]*)$/.test(path.split('?')[0]) && !path.startsWith('/v1/runs?') && path !== '/v1/runs' ? 'POST' : 'GET') : r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
  const headers: Record<string, string> = {};
  const auth = r.next();
  if (auth < 0.85) headers.authorization = `Bearer ${keyA}`;
  else if (auth < 0.9) headers.authorization = `Bearer ${keyB}`;
  else if (auth < 0.95) headers.authorization = latin1(r.pick(['Bearer', 'Bearer ', `Basic ${keyA}`, `bearer ${keyA}`, `Bearer ${keyA}x`, `Bearer ${junkString(r).slice(0, 5000)}`, `Bearer bk_00000000_${'a'.repeat(32)}`]));
  const b = ['GET', 'HEAD'].includes(method) ? undefined : body(r);
  if (b !== undefined || r.chance(0.2)) {
    headers['content-type'] = r.chance(0.8)
      ? 'application/json'
      : r.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx', 'application/merge-patch+json', '', '*/*', latin1(junkString(r).slice(0, 100))]);
  }
  if (r.chance(0.15)) headers['idempotency-key'] = latin1(r.pick(['k', '', 'x'.repeat(256), junkString(r).slice(0, 300)]));
  if (r.chance(0.1)) headers['last-event-id'] = latin1(r.pick(['end', '0-1-0', 'junk', '99999999999999999999-1-1']));
  if (r.chance(0.05)) headers.accept = 'text/event-stream';
  return { path, init: { method, headers, body: b }, what: `${method} ${path.slice(0, 120)} ${b === undefined ? '' : `(${b.length} bytes: ${b.slice(0, 60)})`}` };
}

test(`${REQUESTS} random and malformed requests: no 5xx, every error a JSON error`, { timeout: 240_000 }, async () => {
  const r = prng(SEED);
  const tally = new Map<number, number>();
  const failures: string[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const { path, init, what } = generate(r);
    let res: Response;
    try {
      res = await t.api.request(path, init);
    } catch (err) {
      failures.push(`#${i} ${what}: threw ${(err as Error).message}`);
      continue;
    }
    tally.set(res.status, (tally.get(res.status) ?? 0) + 1);
    const type = res.headers.get('content-type') ?? '';
    if (res.status >= 500) failures.push(`#${i} ${what}: ${res.status} ${(await res.text()).slice(0, 300)}`);
    else if (res.status >= 400 && init.method !== 'HEAD') {
      const text = await res.text();
      let code: unknown;
      try {
        code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
      } catch {
        code = undefined;
      }
      if (!type.startsWith('application/json') || typeof code !== 'string') failures.push(`#${i} ${what}: ${res.status} not a JSON error: ${type} ${text.slice(0, 200)}`);
    } else await res.body?.cancel();
  }
  const statuses = [...tally.entries()].sort(([a], [b]) => a - b);
  const fives = statuses.filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
  console.log(`fuzz: ${REQUESTS} requests (seed ${SEED}): ${statuses.map(([s, c]) => `${s}×${c}`).join(' ')}; 5xx: ${fives}`);
  for (const f of failures.slice(0, 20)) console.log(`fuzz failure: ${f.slice(0, 600)}`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} bad answers`);
  assert.equal([...tally.values()].reduce((a, b) => a + b, 0), REQUESTS);

  // Still standing and still right: a normal request after the storm.
  const ok = await t.api.request('/v1/functions/strict/runs', { method: 'POST', headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' }, body: JSON.stringify({ repo: 'acme/shop', pr: 1 }) });
  assert.equal(ok.status, 202);
  assert.equal((await t.api.request('/healthz')).status, 200);
});
