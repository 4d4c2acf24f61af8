/**
 * The checks every tool server makes before any tool code runs (host, method, token,
 * the one call the token names, its arguments, the idempotency key, the tenant
 * policy, size), exercised in-process against the review tools.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerText, rpc, toolsCall, toolsList } from '../../test/helpers/mcp.ts';
import { registerReviewTools, reviewTouches } from '../review/server.ts';
import { createCommentStore } from '../review/store.ts';
import { type MintClaims, generateKeyPair, loadPrivateKey, loadPublicKey, mintCapability } from './capability.ts';
import { digestArgs } from './digest.ts';
import type { ToolPolicy } from './policy.ts';
import { ARGS_DIGEST_META_KEY, createToolServerApp, IDEMPOTENCY_META_KEY, MAX_REQUEST_BYTES } from './server.ts';

const pair = generateKeyPair();
const signer = loadPrivateKey(pair.privateKeyPem);
const RUN = '0190f5d2-0000-7000-8000-00000000000a';
const OTHER_RUN = '0190f5d2-0000-7000-8000-00000000000b';
const nowS = () => Math.floor(Date.now() / 1000);

async function setup(opts: { policy?: ToolPolicy; maxTokenS?: number } = {}) {
  const store = createCommentStore();
  await store.post({ idempotencyKey: 'seed:0', repo: 'acme/shop', pr: 7, body: 'an earlier comment', path: null, line: null });
  const app = createToolServerApp({
    name: 'review',
    publicKey: loadPublicKey(pair.publicKeyPem),
    allowedHosts: ['127.0.0.1', 'localhost'],
    register: registerReviewTools(store),
    policy: opts.policy ?? null,
    touches: reviewTouches,
    maxTokenS: opts.maxTokenS,
  });
  const fetcher = (url: string, init: RequestInit) => app.request(url, init);
  const call = async (body: unknown, token?: string | Promise<string>, headers: Record<string, string> = {}) =>
    rpc('/mcp', body, { token: await token, fetcher, headers: { host: '127.0.0.1:9999', ...headers } });
  return { store, call, app };
}

const post = { repo: 'acme/shop', pr: 7, body: 'Looks good.' };

/** A call token for `tool` with exactly `args`, as the gateway mints it. */
const token = (tool = 'post_comment', args: unknown = post, over: Partial<MintClaims> = {}) =>
  mintCapability(signer, { use: 'call', aud: 'review', run: RUN, seq: 3, fn: 'pr-review', tenant: 'acme', tool, args: digestArgs(args), exp: nowS() + 60, ...over } as MintClaims);

const listing = (tools: string[]) => mintCapability(signer, { use: 'list', aud: 'review', run: RUN, seq: 3, fn: 'pr-agent', tenant: 'acme', tools, exp: nowS() + 60 });

test('no token → 401 with a WWW-Authenticate challenge; a foreign Host → 403', async () => {
  const { call } = await setup();
  const none = await call(toolsList());
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  const rebinding = await call(toolsList(), token(), { host: 'evil.example.com' });
  assert.equal(rebinding.status, 403);
  assert.match(answerText(rebinding), /host "evil.example.com" is not allowed/);
});

test('GET and DELETE /mcp answer 405 (stateless: no stream, no session), with or without a token', async () => {
  const { app } = await setup();
  for (const method of ['GET', 'DELETE', 'PUT']) {
    for (const auth of [undefined, `Bearer ${await token()}`]) {
      const res = await app.request('/mcp', { method, headers: { host: '127.0.0.1', accept: 'text/event-stream', ...(auth ? { authorization: auth } : {}) } });
      assert.equal(res.status, 405, `${method} ${auth ? 'with' : 'without'} a token`);
      assert.equal(res.headers.get('allow'), 'POST');
      assert.match(res.headers.get('content-type') ?? '', /application\/json/, 'an answer, not a stream');
      assert.match(((await res.json()) as { error: { message: string } }).error.message, /stateless, POST only/);
    }
  }
});

test('expired, tampered, foreign-signed, wrong-audience and too long-lived tokens are refused before any tool runs', async () => {
  const { call, store } = await setup({ maxTokenS: 600 });
  const foreign = await mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), { use: 'call', aud: 'review', run: RUN, seq: 3, fn: 'x', tenant: 'acme', tool: 'post_comment', args: digestArgs(post), exp: nowS() + 60 });
  const good = await token();
  const [header, body, sig] = good.split('.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
  const widened = `${header}.${Buffer.from(JSON.stringify({ ...claims, tool: 'delete_all' })).toString('base64url')}.${sig}`;
  const cases: Array<[string, string | Promise<string>, number, RegExp]> = [
    ['expired', token('post_comment', post, { iat: nowS() - 10, exp: nowS() - 1 }), 401, /token expired/],
    ['tampered', widened, 401, /bad signature/],
    ['foreign key', foreign, 401, /bad signature/],
    ['wrong audience', token('post_comment', post, { aud: 'git' }), 403, /token is for "git", not "review"/],
    ['garbage', 'not-a-token', 401, /malformed token/],
    ['lives too long', token('post_comment', post, { exp: nowS() + 601 }), 401, /exceeds the maximum of 600 s \(BATON_TOOL_MAX_TOKEN_S\)/],
    ['issued in the future', token('post_comment', post, { iat: nowS() + 300, exp: nowS() + 360 }), 401, /token issued in the future/],
  ];
  for (const [what, t, status, reason] of cases) {
    const a = await call(toolsCall('post_comment', post), t);
    assert.equal(a.status, status, what);
    assert.match(answerText(a), reason, what);
  }
  const widenedCall = await call(toolsCall('delete_all', { repo: 'acme/shop' }), widened);
  assert.equal(widenedCall.status, 401);
  assert.equal((await store.list({})).length, 1, 'nothing was posted or deleted');
});

test("a call token lists and calls only its one tool; a listing token lists the named tools and calls none", async () => {
  const { call, store } = await setup();
  const listed = await call(toolsList(), token());
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body?.result?.tools?.map((t) => t.name), ['post_comment']);
  const all = await call(toolsList(), listing(['post_comment', 'list_comments', 'delete_all']));
  assert.deepEqual(all.body?.result?.tools?.map((t) => t.name).sort(), ['delete_all', 'list_comments', 'post_comment'], 'the destructive tool does exist on this server');

  const denied = await call(toolsCall('delete_all', { repo: 'acme/shop' }), token());
  assert.equal(denied.status, 403);
  assert.match(answerText(denied), /tool "delete_all" is not in this token's scope/);
  const byLister = await call(toolsCall('list_comments', {}), listing(['list_comments']));
  assert.equal(byLister.status, 403);
  assert.match(answerText(byLister), /a listing token cannot call tools/);
  // A JSON-RPC batch cannot smuggle a second call past the check either.
  const batch = await call([toolsCall('post_comment', post), toolsCall('post_comment', post)], token());
  assert.equal(batch.status, 403);
  assert.match(answerText(batch), /one call/);
  assert.equal((await store.list({})).length, 1);
});

test('a token is good for its exact arguments only: other arguments are 403 token_args_mismatch', async () => {
  const { call, store } = await setup();
  for (const other of [{ ...post, pr: 8 }, { ...post, repo: 'victim/secrets' }, { ...post, body: 'pwned' }, { ...post, path: 'x.js' }, { repo: 'acme/shop', pr: 7 }]) {
    const a = await call(toolsCall('post_comment', other, `${RUN}:3`), token());
    assert.equal(a.status, 403, JSON.stringify(other));
    assert.match(answerText(a), /^token_args_mismatch: /);
    assert.equal((a.body?.error as { data?: { code?: string } } | undefined)?.data?.code, 'token_args_mismatch');
  }
  // Key order is not a difference: the digest is over canonical JSON.
  const reordered = await call(toolsCall('post_comment', { body: post.body, pr: post.pr, repo: post.repo }), token());
  assert.equal(reordered.status, 200, answerText(reordered));
  // A declared digest in _meta that is not the token's is refused as well.
  const body = toolsCall('post_comment', post);
  (body.params as Record<string, unknown>)._meta = { [IDEMPOTENCY_META_KEY]: `${RUN}:3`, [ARGS_DIGEST_META_KEY]: digestArgs({ other: true }) };
  assert.equal((await call(body, token())).status, 403);
  assert.equal((await store.list({})).length, 2, 'only the call with the right arguments posted');
});

test("a token cannot write under another run's idempotency key", async () => {
  const { call, store } = await setup();
  const foreignKey = await call(toolsCall('post_comment', post, `${OTHER_RUN}:3`), token());
  assert.equal(foreignKey.status, 403);
  assert.match(answerText(foreignKey), /idempotency key does not belong to this token/);
  const otherSeq = await call(toolsCall('post_comment', post, `${RUN}:4`), token());
  assert.equal(otherSeq.status, 403);
  assert.equal((await store.list({})).length, 1);

  // The token's own key works, and a repeat is deduplicated on it.
  const first = await call(toolsCall('post_comment', post, `${RUN}:3`), token());
  const again = await call(toolsCall('post_comment', post), token());
  assert.equal(first.status, 200, answerText(first));
  assert.equal(first.body?.result?.structuredContent?.created, true);
  assert.equal(again.body?.result?.structuredContent?.created, false);
  assert.equal((await store.list({})).length, 2);
});

test('the tenant policy: a repository outside the tenant’s patterns is 403 naming the rule; inside it posts', async () => {
  const policy: ToolPolicy = { tenants: { acme: { repos: ['acme/*'] }, ops: { repos: ['*/*'] } } };
  const { call, store } = await setup({ policy });
  const victim = { repo: 'victim/secrets', pr: 1, body: 'pwned' };
  const refused = await call(toolsCall('post_comment', victim), token('post_comment', victim));
  assert.equal(refused.status, 403);
  assert.equal(answerText(refused), 'policy_denied: tenant "acme" may not touch repository "victim/secrets" (BATON_TOOL_POLICY tenants.acme.repos is ["acme/*"])');
  const unknown = await call(toolsCall('post_comment', post), token('post_comment', post, { tenant: 'globex' }));
  assert.equal(unknown.status, 403);
  assert.match(answerText(unknown), /tenant "globex" has no entry in BATON_TOOL_POLICY \(tenants\.globex\)/);
  const everything = await call(toolsCall('list_comments', {}), token('list_comments', {}));
  assert.equal(everything.status, 403);
  assert.match(answerText(everything), /may not touch every repository/);
  assert.equal((await call(toolsCall('list_comments', {}), token('list_comments', {}, { tenant: 'ops' }))).status, 200);
  const upper = { ...post, repo: 'ACME/shop' };
  const own = await call(toolsCall('post_comment', upper), token('post_comment', upper));
  assert.equal(own.status, 200, answerText(own));
  assert.equal((await store.list({ repo: 'victim/secrets' })).length, 0);
});

test('bad arguments get a clear MCP error naming the field; nothing is posted', async () => {
  const { call, store } = await setup();
  for (const [args, field] of [
    [{ repo: 'acme/shop', pr: 'seven', body: 'x' }, 'pr'],
    [{ repo: 'acme/shop', pr: 7 }, 'body'],
    [{ repo: '', pr: 7, body: 'x' }, 'repo'],
    [{ repo: 'acme/shop', pr: -1, body: 'x' }, 'pr'],
    [{ repo: 'acme/shop', pr: 7, body: 'x'.repeat(70_000) }, 'body'],
  ] as const) {
    const a = await call(toolsCall('post_comment', args), token('post_comment', args));
    assert.equal(a.status, 200);
    assert.equal(a.body?.result?.isError, true, JSON.stringify(args).slice(0, 80));
    assert.match(answerText(a), /Input validation error/);
    assert.match(answerText(a), new RegExp(`at ${field}\\b`));
  }
  assert.equal((await store.list({})).length, 1);
});

test('a body that is not JSON is 400, an oversized one 413', async () => {
  const { call } = await setup();
  assert.equal((await call('{"jsonrpc":', token())).status, 400);
  const huge = JSON.stringify(toolsCall('post_comment', { ...post, body: 'x'.repeat(MAX_REQUEST_BYTES) }));
  assert.equal((await call(huge, token())).status, 413);
});
