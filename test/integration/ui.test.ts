/**
 * The run inspector (/ui) and the API it needs, through the API app with API keys on:
 * sign-in and the cookie session (HttpOnly, CSRF-checked, accepted by the event
 * stream), the strict CSP, the runs list (full ids, filters, id search, cursor pages),
 * the run page's timeline (retries visible), a step's detail (patch, state it saw,
 * prompt and answer, tool arguments and result, each attempt's error), and tenants.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as v from 'valibot';
import { append, defineAgent, done, next, parallel } from '../../runtime/define.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { createApi } from '../../runtime/api/app.ts';
import { createApiKey, revokeApiKey } from '../../runtime/store/api-keys.ts';
import { type TestPlatform, startTestPlatform, waitForRun } from '../helpers/platform.ts';

const inspect = defineAgent({
  name: 'inspect',
  input: v.object({ topic: v.string() }),
  start: 'think',
  steps: {
    think: async (ctx) => {
      const { text } = await ctx.llm.generateText({ instructions: 'Answer in one line.', prompt: `Tell me about ${ctx.input.topic}` });
      return next('check', { answer: text, notes: append('thought about it') });
    },
    check: (ctx) => {
      if (ctx.attempt === 1) throw new Error('the checker was flaky');
      return next('finish', { checked: true });
    },
    finish: (ctx) => done({ answer: ctx.state.answer }),
  },
});

const fan = defineAgent({
  name: 'fan',
  input: v.object({ files: v.array(v.string()) }),
  start: 'split',
  steps: {
    split: (ctx) => parallel(ctx.input.files.map((file) => ({ step: 'size', input: { file } })), { join: 'sum' }),
    size: (ctx) => done({ file: (ctx.branch?.input as { file: string }).file, bytes: 10 * (ctx.branch?.index ?? 0) }),
    sum: (ctx) => done({ total: (ctx.branches ?? []).reduce((n, b) => n + (b.output as { bytes: number }).bytes, 0) }),
  },
});

const chat = defineAgent({
  name: 'chat',
  input: v.object({ turns: v.number() }),
  start: 'answer',
  steps: {
    answer: async (ctx) => {
      const messages = Array.from({ length: ctx.input.turns }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `message ${i}` }));
      return done((await ctx.llm.generateText({ messages })).text);
    },
  },
});

let t: TestPlatform;
let key: string;
let otherKey: string;
let api: TestPlatform['api'];

const bearer = (k: string) => ({ authorization: `Bearer ${k}`, 'content-type': 'application/json' });

async function start(fn: string, input: unknown, k = key): Promise<string> {
  const res = await api.request(`/v1/functions/${fn}/runs`, { method: 'POST', headers: bearer(k), body: JSON.stringify(input) });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Signs in through the form and returns the cookie header and the page's CSRF token. */
async function signIn(k = key): Promise<{ cookie: string; csrf: string }> {
  const res = await api.request('/ui/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
    body: new URLSearchParams({ key: k, next: '/ui' }).toString(),
  });
  assert.equal(res.status, 303);
  const setCookie = res.headers.get('set-cookie') ?? '';
  assert.match(setCookie, /HttpOnly/i);
  assert.match(setCookie, /SameSite=Strict/i);
  const cookie = setCookie.split(';')[0] as string;
  const page = await (await api.request('/ui', { headers: { cookie } })).text();
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1];
  assert.ok(csrf, 'the page carries its CSRF token');
  return { cookie, csrf };
}

before(async () => {
  const functions = new Map([...(await loadFunctions(path.resolve('functions'))), ['inspect', inspect], ['fan', fan], ['chat', chat]]);
  t = await startTestPlatform({ functions, env: { BATON_AUTH: 'on', BATON_AUTH_FAILURES_PER_MIN: '3' }, llm: { reply: () => 'Baton hands the baton on.' } });
  api = t.api;
  key = (await createApiKey(t.p.db, 'acme', 'ui test')).key;
  otherKey = (await createApiKey(t.p.db, 'globex', 'other tenant')).key;
});
after(() => t.close());

describe('sign-in and headers', () => {
  test('/ui without a session answers the sign-in page (401) with a strict CSP and no framing', async () => {
    const res = await api.request('/ui?status=failed');
    assert.equal(res.status, 401);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"]) {
      assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const page = await res.text();
    assert.match(page, /name="next" value="\/ui\?status=failed"/);
    assertNoInlineCode(page);
  });

  test('a wrong key is refused; a good one gets an HttpOnly SameSite=Strict session', async () => {
    const bad = await api.request('/ui/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
      body: 'key=bk_00000000_' + 'x'.repeat(32),
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get('set-cookie'), null);
    const { cookie } = await signIn();
    assert.doesNotMatch(cookie, new RegExp(key.slice(12)), 'the cookie does not carry the key');
    const page = await api.request('/ui', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /acme/);
  });

  test('failed sign-ins from one address are slowed down like failed API keys (429)', async () => {
    const from = { incoming: { socket: { remoteAddress: '10.9.8.7' } } };
    const attempt = (k: string) =>
      api.request('/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' }, body: new URLSearchParams({ key: k }).toString() }, from);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await attempt(`bk_0000000${i}_${'y'.repeat(32)}`)).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
    assert.equal((await attempt(key)).status, 429, 'even a good key waits out the window from that address');
    const elsewhere = await api.request('/ui/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' }, body: new URLSearchParams({ key }).toString() }, { incoming: { socket: { remoteAddress: '10.9.8.6' } } });
    assert.equal(elsewhere.status, 303);
  });

  test('a login form posted from another site is refused (login CSRF)', async () => {
    const res = await api.request('/ui/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
      body: new URLSearchParams({ key }).toString(),
    });
    assert.equal(res.status, 403);
  });

  test('a forged or tampered cookie is not a session', async () => {
    const { cookie } = await signIn();
    const tampered = cookie.replace(/\.(\d+)\./, (_, exp: string) => `.${Number(exp) + 1000}.`);
    assert.equal((await api.request('/ui', { headers: { cookie: tampered } })).status, 401);
    const res = await api.request('/v1/runs', { headers: { cookie: tampered } });
    assert.equal(res.status, 401);
  });

  test('the static script and styles come from this origin with the same CSP', async () => {
    for (const f of ['inspector.js', 'inspector.css']) {
      const res = await api.request(`/ui/static/${f}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.ok(res.headers.get('etag'));
    }
    assert.equal((await api.request('/ui/static/../app.ts')).status, 404);
  });
});

describe('the cookie session on /v1', () => {
  test('reads and the event stream work with the cookie alone (EventSource sends no header)', async () => {
    const { cookie } = await signIn();
    const id = await start('inspect', { topic: 'cookies' });
    assert.equal((await api.request(`/v1/runs/${id}`, { headers: { cookie } })).status, 200);
    await waitForRun(t.p, id);
    const events = await api.request(`/v1/runs/${id}/events`, { headers: { cookie } });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await events.text();
    assert.match(text, /event: run.finished/);
  });

  test('a POST with the cookie needs the CSRF token and must not be cross-site', async () => {
    const { cookie, csrf } = await signIn();
    const id = await start('inspect', { topic: 'csrf' });
    await waitForRun(t.p, id);
    const post = (headers: Record<string, string>) =>
      api.request(`/v1/runs/${id}/replay`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', ...headers }, body: '{}' });
    const none = await post({});
    assert.equal(none.status, 403);
    assert.match(((await none.json()) as { error: { message: string } }).error.message, /CSRF/);
    assert.equal((await post({ 'x-csrf-token': 'A'.repeat(43) })).status, 403);
    assert.equal((await post({ 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).status, 403);
    const ok = await post({ 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' });
    assert.equal(ok.status, 202);
  });

  test('signing out needs the page CSRF token and clears the cookie', async () => {
    const { cookie, csrf } = await signIn();
    const post = (body: string) =>
      api.request('/ui/logout', { method: 'POST', headers: { cookie, origin: 'http://localhost', 'content-type': 'application/x-www-form-urlencoded' }, body });
    assert.equal((await post('csrf=wrong')).status, 403);
    const out = await post(`csrf=${encodeURIComponent(csrf)}`);
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /baton_session=;.*Max-Age=0/i);
  });

  test('revoking the key ends its sessions', async () => {
    const k = await createApiKey(t.p.db, 'acme', 'short-lived');
    const { cookie } = await signIn(k.key);
    assert.ok(await revokeApiKey(t.p.db, k.id));
    // A fresh app has a cold cache: the lookup sees the revocation at once (else within 10 s).
    const fresh = createApi(t.p);
    assert.equal((await fresh.request('/v1/runs', { headers: { cookie } })).status, 401);
    assert.equal((await fresh.request('/ui', { headers: { cookie } })).status, 401);
  });
});

describe('pages', () => {
  let session: { cookie: string; csrf: string };
  let runId: string;
  let prId: string;
  before(async () => {
    session = await signIn();
    runId = await start('inspect', { topic: 'timelines' });
    prId = await start('pr-review', { repo: 'acme/shop', pr: 9 });
    await Promise.all([waitForRun(t.p, runId), waitForRun(t.p, prId)]);
  });
  const get = async (url: string, k = session.cookie) => {
    const res = await api.request(url, { headers: { cookie: k } });
    return { status: res.status, text: await res.text() };
  };

  test('the runs list shows full run ids, filters by status and function, and finds a run by id or prefix', async () => {
    const all = await get('/ui');
    assert.equal(all.status, 200);
    assertNoInlineCode(all.text);
    assert.ok(all.text.includes(`>${runId}</a>`), 'the whole id is shown');
    assert.ok(all.text.includes(prId));
    const byFn = await get('/ui?function=pr-review');
    assert.ok(byFn.text.includes(prId) && !byFn.text.includes(`>${runId}<`));
    const failed = await get('/ui?status=failed');
    assert.ok(!failed.text.includes(runId));
    const exact = await api.request(`/ui?q=${runId}`, { headers: { cookie: session.cookie } });
    assert.equal(exact.status, 303);
    assert.equal(exact.headers.get('location'), `/ui/runs/${runId}`);
    const prefix = await get(`/ui?q=${runId.slice(0, 23)}`);
    assert.ok(prefix.text.includes(runId) && !prefix.text.includes(prId));
    const rows = await get('/ui?function=pr-review&fragment=rows');
    assert.match(rows.text, /^<tbody id="runs-body">/, 'finished runs only: the list needs no redraw');
    assert.ok(rows.text.includes(prId) && !rows.text.includes('<html'));
    const junk = await get('/ui?q=not-an-id%3Cscript%3E');
    assert.match(junk.text, /is not a run id/);
    assert.doesNotMatch(junk.text, /<script>/);
  });

  test('pages follow a cursor: no run is skipped or shown twice', async () => {
    const ids = [];
    for (let i = 0; i < 27; i++) ids.push(await start('chain', { steps: 1 }));
    const seen: string[] = [];
    let url: string | null = '/ui?function=chain&limit=25';
    for (let pages = 0; url && pages < 5; pages++) {
      const { text } = await get(url);
      seen.push(...[...text.matchAll(/class="run-id" href="\/ui\/runs\/([0-9a-f-]{36})"/g)].map((m) => m[1] as string));
      const older = /href="([^"]+)" rel="next"/.exec(text)?.[1];
      url = older ? older.replaceAll('&amp;', '&') : null;
    }
    assert.equal(seen.length, 27);
    assert.deepEqual(new Set(seen), new Set(ids));
  });

  test('another tenant sees neither the run nor its steps', async () => {
    const other = await signIn(otherKey);
    assert.equal((await get(`/ui/runs/${runId}`, other.cookie)).status, 404);
    assert.ok(!(await get('/ui', other.cookie)).text.includes(runId));
    const res = await api.request(`/v1/runs/${runId}/steps/0`, { headers: bearer(otherKey) });
    assert.equal(res.status, 403);
  });

  test('the run page draws a timeline row per step, retries visible, with totals', async () => {
    const { status, text } = await get(`/ui/runs/${runId}`);
    assert.equal(status, 200);
    assertNoInlineCode(text);
    const rows = [...text.matchAll(/<a class="tl-row[^"]*" href="[^"]*" data-seq="(\d+)">/g)].map((m) => Number(m[1]));
    assert.deepEqual(rows, [0, 1, 2]);
    assert.match(text, /title="2 attempts">×2</, 'the retried step says so');
    assert.match(text, /class="seg-failed"/);
    assert.match(text, /class="seg-backoff"/);
    assert.match(text, /class="seg-queued"/);
    assert.match(text, /<dt>Tokens<\/dt><dd>11 in · 7 out<\/dd>/);
    assert.match(text, /data-action="replay"/);
  });

  test('a step opened: its patch, the state it saw, the prompt and the answer, each attempt with its error', async () => {
    const llm = await get(`/ui/runs/${runId}?step=0`);
    assert.match(llm.text, /Tell me about timelines/);
    assert.match(llm.text, /Answer in one line\./);
    assert.match(llm.text, /Baton hands the baton on\./);
    assert.match(llm.text, /\$append/);
    const check = await get(`/ui/runs/${runId}?step=1`);
    assert.match(check.text, /Attempt 1/);
    assert.match(check.text, /the checker was flaky/);
    assert.match(check.text, /Attempt 2/);
    assert.match(check.text, /State it saw/);
    assert.match(check.text, /thought about it/, 'the state holds step 0\'s patch');
    const fragment = await get(`/ui/runs/${runId}?step=1&fragment=step`);
    assert.match(fragment.text, /^<section class="panel step"/);
  });

  test('GET /v1/runs/:id/steps/:seq: patch, state before, attempts with their calls and errors', async () => {
    const res = await api.request(`/v1/runs/${runId}/steps/0`, { headers: bearer(key) });
    assert.equal(res.status, 200);
    const d = (await res.json()) as {
      patch: Record<string, unknown>;
      stateBefore: Record<string, unknown>;
      attempts: Array<{ attempt: number; status: string; error: { message: string } | null; call: { kind: string; request: Record<string, unknown>; response: Record<string, unknown> } | null }>;
    };
    assert.deepEqual(d.patch, { answer: 'Baton hands the baton on.', notes: { $append: ['thought about it'] } });
    assert.deepEqual(d.stateBefore, {});
    assert.equal(d.attempts[0]?.call?.kind, 'llm');
    assert.equal(d.attempts[0]?.call?.request.prompt, 'Tell me about timelines');
    assert.equal(d.attempts[0]?.call?.request.instructions, 'Answer in one line.');
    assert.equal(d.attempts[0]?.call?.response.text, 'Baton hands the baton on.');

    const check = (await (await api.request(`/v1/runs/${runId}/steps/1`, { headers: bearer(key) })).json()) as typeof d;
    assert.deepEqual(check.attempts.map((a) => [a.attempt, a.status]), [[1, 'failed'], [2, 'succeeded']]);
    assert.match(check.attempts[0]?.error?.message ?? '', /the checker was flaky/);
    assert.deepEqual(check.stateBefore, { answer: 'Baton hands the baton on.', notes: ['thought about it'] });

    assert.equal((await api.request(`/v1/runs/${runId}/steps/x1`, { headers: bearer(key) })).status, 400);
    const missing = await api.request(`/v1/runs/${runId}/steps/99`, { headers: bearer(key) });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'step_not_found');
  });

  test('a fan-out: a row per branch, marked, and a branch opened shows its input and output (no replay from it)', async () => {
    const id = await start('fan', { files: ['a.ts', 'b.ts'] });
    assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
    const { text } = await get(`/ui/runs/${id}`);
    const rows = [...text.matchAll(/<a class="tl-row([^"]*)" href="[^"]*" data-seq="(\d+)"/g)].map((m) => [Number(m[2]), (m[1] ?? '').includes('branch')]);
    assert.deepEqual(rows, [[0, false], [1, true], [2, true], [3, false]]);
    assert.match(text, /title="branch 2 of a fan-out">↳2</);
    const branch = await get(`/ui/runs/${id}?step=2`);
    assert.match(branch.text, /branch 2 of the fan-out at #0/);
    assert.match(branch.text, /Branch input[\s\S]*b\.ts[\s\S]*Branch output[\s\S]*bytes/);
    assert.doesNotMatch(branch.text, /Replay from this step/);
  });

  test('a long conversation is recorded by its latest messages only: the record per step stays flat', async () => {
    const id = await start('chat', { turns: 31 });
    await waitForRun(t.p, id);
    const d = (await (await api.request(`/v1/runs/${id}/steps/0`, { headers: bearer(key) })).json()) as {
      attempts: Array<{ call: { request: { messages: Array<{ content: string }>; earlierMessages: number } } }>;
    };
    const req = d.attempts[0]?.call.request;
    assert.equal(req?.earlierMessages, 19);
    assert.deepEqual(req?.messages.map((m) => m.content), Array.from({ length: 12 }, (_, i) => `message ${19 + i}`));
    assert.match((await get(`/ui/runs/${id}?step=0`)).text, /… 19 earlier messages/);
  });

  test('a tool step shows the arguments it sent and the result it got', async () => {
    const res = await api.request(`/v1/runs/${prId}/steps/0`, { headers: bearer(key) });
    const d = (await res.json()) as { attempts: Array<{ call: { kind: string; request: { tool: string; args: Record<string, unknown> }; response: unknown } }> };
    const call = d.attempts[0]?.call;
    assert.equal(call?.kind, 'tool');
    assert.equal(call?.request.tool, 'git.get_diff');
    assert.ok(call?.request.args && Object.keys(call.request.args).length > 0);
    assert.match(JSON.stringify(call?.response), /diff --git|@@/);
    const page = await get(`/ui/runs/${prId}?step=0`);
    assert.match(page.text, /<h4>Tool <code>git.get_diff<\/code><\/h4>/);
    assert.match(page.text, /Arguments/);
    assert.match(page.text, /the gateway&#39;s audit|tool_calls/);
  });
});

/** The CSP forbids inline code: every <script> has a src, no element has an on* handler or a style attribute. */
function assertNoInlineCode(page: string) {
  for (const m of page.matchAll(/<script\b([^>]*)>/g)) assert.match(m[1] ?? '', /\bsrc="\/ui\/static\//, `inline script: ${m[0]}`);
  assert.doesNotMatch(page, /<[a-z][^>]*\son[a-z]+=/i, 'inline event handler');
  assert.doesNotMatch(page, /<[a-z][^>]*\sstyle=/i, 'inline style attribute');
}
