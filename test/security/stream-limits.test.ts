/**
 * Event streams are bounded: a tenant holds at most BATON_MAX_STREAMS_PER_TENANT of
 * them across API replicas (429 `too_many_streams` beyond), the streams of one run
 * share one watcher (database reads follow the run's changes, not the number of
 * clients), a stream ends after BATON_STREAM_MAX_S and resumes with Last-Event-ID
 * without a gap or a repeat, and a revoked key's streams end within its cache time.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import type { Config } from '../../runtime/config.ts';
import { defineAgent, done, next, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Platform } from '../../runtime/platform.ts';
import { createApiKey, revokeApiKey } from '../../runtime/store/api-keys.ts';
import { type TestPlatform, startTestPlatform, waitFor, waitForRun } from '../helpers/platform.ts';

const holder = defineAgent({
  name: 'holder',
  input: v.object({}),
  start: 'first',
  steps: {
    first: () => next('hold'),
    hold: (ctx) => (ctx.signal ? done({ ok: true }) : wait('go')),
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, functions: registryOf(holder), env: { BATON_AUTH: 'on' } });
});
after(() => t.close());

type Api = ReturnType<typeof createApi>;

/** An API app over the test platform with other limits, and a count of its database calls. */
function apiWith(limits: Partial<Config['limits']>) {
  const counter = { calls: 0 };
  const p: Platform = {
    ...t.p,
    config: { ...t.p.config, limits: { ...t.p.config.limits, ...limits } },
    withDb: (fn, budget) => {
      counter.calls++;
      return t.p.withDb(fn, budget);
    },
  };
  return { api: createApi(p), counter };
}

interface Sse {
  status: number;
  headers: Headers;
  events: Array<{ id?: string; event: string; data: string }>;
  text: () => string;
  ended: Promise<void>;
  isEnded: () => boolean;
  cancel(): Promise<void>;
}

async function open(api: Api, path: string, key: string, headers: Record<string, string> = {}): Promise<Sse> {
  const res = await api.request(path, { headers: { authorization: `Bearer ${key}`, ...headers } });
  let raw = '';
  let ended = false;
  const events: Sse['events'] = [];
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    if (!reader || res.status !== 200) return;
    for (;;) {
      const chunk = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (chunk.done) break;
      raw += decoder.decode(chunk.value, { stream: true });
      const blocks = raw.split('\n\n');
      raw = blocks.pop() ?? '';
      for (const block of blocks) {
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
        if (fields.event) events.push({ id: fields.id, event: fields.event, data: fields.data });
      }
    }
  })().finally(() => {
    ended = true;
  });
  return {
    status: res.status,
    headers: res.headers,
    events,
    text: () => events.map((e) => `${e.id ?? ''} ${e.event}`).join('\n'),
    ended: done,
    isEnded: () => ended,
    cancel: async () => {
      await reader?.cancel().catch(() => {});
      await done;
    },
  };
}

async function startHeld(api: Api, key: string): Promise<string> {
  const res = await api.request('/v1/functions/holder/runs', { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  await waitForRun(t.p, id, ['waiting']);
  return id;
}

test('at most BATON_MAX_STREAMS_PER_TENANT streams per tenant across replicas; beyond, 429 too_many_streams with Retry-After', async () => {
  const { key } = await createApiKey(t.p.db, 'watcher');
  const a = apiWith({ streamsPerTenant: 3 }).api;
  const b = apiWith({ streamsPerTenant: 3 }).api;
  const id = await startHeld(a, key);
  const streams = [await open(a, `/v1/runs/${id}/events`, key), await open(b, `/v1/runs/${id}/events`, key), await open(a, `/v1/runs/${id}/events`, key)];
  assert.deepEqual(streams.map((s) => s.status), [200, 200, 200]);
  for (const api of [a, b]) {
    const refused = await open(api, `/v1/runs/${id}/events`, key);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
  }
  const body = (await (await b.request(`/v1/runs/${id}/events`, { headers: { authorization: `Bearer ${key}` } })).json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'too_many_streams');
  assert.match(body.error.message, /BATON_MAX_STREAMS_PER_TENANT/);

  // Another tenant has its own places.
  const other = await createApiKey(t.p.db, 'other-watcher');
  const otherRun = await startHeld(a, other.key);
  const theirs = await open(b, `/v1/runs/${otherRun}/events`, other.key);
  assert.equal(theirs.status, 200);
  await theirs.cancel();

  // A stream that ends gives its place back.
  await streams[0].cancel();
  const again = await waitFor(async () => {
    const s = await open(b, `/v1/runs/${id}/events`, key);
    if (s.status === 200) return s;
    return null;
  }, 'a place once a stream closed');
  await Promise.all([again, ...streams.slice(1)].map((s) => s.cancel()));
});

test('the streams of one run share one watcher: idle streams cost no reads, and a change is read once for all of them', async () => {
  const { key } = await createApiKey(t.p.db, 'crowd');
  const { api, counter } = apiWith({ streamsPerTenant: 100 });
  const id = await startHeld(api, key);
  const streams: Sse[] = [];
  for (let i = 0; i < 25; i++) streams.push(await open(api, `/v1/runs/${id}/events`, key));
  await waitFor(() => streams.every((s) => s.events.some((e) => e.event === 'run.waiting')), 'every stream caught up');
  // Idle: one batched check of the watched runs a second, whatever the number of streams (it was one full read per stream a second).
  const idleFrom = counter.calls;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const idle = counter.calls - idleFrom;
  assert.ok(idle <= 8, `25 idle streams for 3 s made ${idle} database calls`);

  const changeFrom = counter.calls;
  assert.equal((await api.request(`/v1/runs/${id}/signals/go`, { method: 'POST', headers: { authorization: `Bearer ${key}` } })).status, 202);
  await Promise.all(streams.map((s) => s.ended));
  for (const s of streams) {
    assert.match(s.text(), /step\.completed\n.*run\.finished$/s, s.text());
    const ids = s.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
  }
  const change = counter.calls - changeFrom;
  assert.ok(change <= 15, `25 streams followed the run to its end with ${change} database calls (signal included)`);
});

test('a stream ends after BATON_STREAM_MAX_S; resuming with Last-Event-ID goes on with no gap and no repeat', { timeout: 30_000 }, async () => {
  const { key } = await createApiKey(t.p.db, 'patient');
  const { api } = apiWith({ streamMaxMs: 1000 });
  const id = await startHeld(api, key);
  const first = await open(api, `/v1/runs/${id}/events`, key);
  await first.ended;
  assert.ok(first.events.some((e) => e.event === 'run.waiting'), first.text());
  assert.ok(!first.events.some((e) => e.event === 'run.finished'), 'ended by the time limit, not by the run');
  const lastId = first.events.at(-1)?.id as string;

  // The resumed stream may live longer: on a loaded machine the run may take more than the first one's second to finish.
  const { api: later } = apiWith({ streamMaxMs: 20_000 });
  const second = await open(later, `/v1/runs/${id}/events`, key, { 'last-event-id': lastId });
  assert.equal((await later.request(`/v1/runs/${id}/signals/go`, { method: 'POST', headers: { authorization: `Bearer ${key}` } })).status, 202);
  await second.ended;
  const seen = new Set(first.events.map((e) => e.id));
  assert.ok(second.events.every((e) => !seen.has(e.id)), `no repeat: ${second.text()}`);
  assert.match(second.text(), /step\.started\n.*step\.completed\n.*run\.finished$/s, second.text());
});

test("a revoked key's streams end within its cache time", { timeout: 30_000 }, async () => {
  const { key, id: keyId } = await createApiKey(t.p.db, 'revoked');
  const { api } = apiWith({ authCacheMs: 500 });
  const id = await startHeld(api, key);
  const s = await open(api, `/v1/runs/${id}/events`, key);
  await waitFor(() => s.events.some((e) => e.event === 'run.waiting'), 'the stream to catch up');
  assert.equal(await revokeApiKey(t.p.db, keyId), true);
  await waitFor(() => s.isEnded(), 'the stream to end after the key was revoked', 10_000);
  assert.ok(!s.events.some((e) => e.event === 'run.finished'));
  assert.equal((await open(api, `/v1/runs/${id}/events`, key)).status, 401);
});
