/**
 * The checks every tool server makes before any tool code runs (host, token, scope,
 * idempotency key, size), exercised in-process against the review tools.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerText, rpc, toolsCall, toolsList } from '../../test/helpers/mcp.ts';
import { registerReviewTools } from '../review/server.ts';
import { createCommentStore } from '../review/store.ts';
import { generateKeyPair, loadPrivateKey, loadPublicKey, mintCapability } from './capability.ts';
import { createToolServerApp, MAX_REQUEST_BYTES } from './server.ts';

const pair = generateKeyPair();
const signer = loadPrivateKey(pair.privateKeyPem);
const RUN = '0190f5d2-0000-7000-8000-00000000000a';
const OTHER_RUN = '0190f5d2-0000-7000-8000-00000000000b';

function setup() {
  const store = createCommentStore();
  store.post({ idempotencyKey: 'seed:0', repo: 'acme/shop', pr: 7, body: 'an earlier comment', path: null, line: null });
  const app = createToolServerApp({
    name: 'review',
    publicKey: loadPublicKey(pair.publicKeyPem),
    allowedHosts: ['127.0.0.1', 'localhost'],
    register: registerReviewTools(store),
  });
  const fetcher = (url: string, init: RequestInit) => app.request(url, init);
  const call = (body: unknown, token?: string, headers: Record<string, string> = {}) =>
    rpc('/mcp', body, { token, fetcher, headers: { host: '127.0.0.1:9999', ...headers } });
  return { store, call };
}

const token = (over: Partial<Parameters<typeof mintCapability>[1]> = {}) =>
  mintCapability(signer, { aud: 'review', run: RUN, seq: 3, fn: 'pr-review', tools: ['post_comment', 'list_comments'], exp: Math.floor(Date.now() / 1000) + 60, ...over });

const post = { repo: 'acme/shop', pr: 7, body: 'Looks good.' };

test('no token → 401 with a WWW-Authenticate challenge; a foreign Host → 403', async () => {
  const { call } = setup();
  const none = await call(toolsList());
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  const rebinding = await call(toolsList(), token(), { host: 'evil.example.com' });
  assert.equal(rebinding.status, 403);
  assert.match(answerText(rebinding), /host "evil.example.com" is not allowed/);
});

test('expired, tampered, foreign-signed and wrong-audience tokens are refused before any tool runs', async () => {
  const { call, store } = setup();
  const foreign = mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), { aud: 'review', run: RUN, seq: 3, fn: 'x', tools: ['post_comment'], exp: Math.floor(Date.now() / 1000) + 60 });
  const good = token();
  const [prefix, body, sig] = good.split('.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
  const widened = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, tools: ['delete_all'] })).toString('base64url')}.${sig}`;
  const cases: Array<[string, string, number, RegExp]> = [
    ['expired', token({ exp: Math.floor(Date.now() / 1000) - 1 }), 401, /token expired/],
    ['tampered', widened, 401, /bad signature/],
    ['foreign key', foreign, 401, /bad signature/],
    ['wrong audience', token({ aud: 'git' }), 403, /token is for "git", not "review"/],
    ['garbage', 'not-a-token', 401, /malformed token/],
  ];
  for (const [what, t, status, reason] of cases) {
    const a = await call(toolsCall('post_comment', post), t);
    assert.equal(a.status, status, what);
    assert.match(answerText(a), reason, what);
  }
  const widenedCall = await call(toolsCall('delete_all', { repo: 'acme/shop' }), widened);
  assert.equal(widenedCall.status, 401);
  assert.equal(store.list({}).length, 1, 'nothing was posted or deleted');
});

test('only the tools in the token are listed, and a call outside the scope is 403 even though the tool exists', async () => {
  const { call, store } = setup();
  const listed = await call(toolsList(), token());
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body?.result?.tools?.map((t) => t.name).sort(), ['list_comments', 'post_comment']);
  const all = await call(toolsList(), token({ tools: ['post_comment', 'list_comments', 'delete_all'] }));
  assert.ok(all.body?.result?.tools?.some((t) => t.name === 'delete_all'), 'the destructive tool does exist on this server');

  const denied = await call(toolsCall('delete_all', { repo: 'acme/shop' }), token());
  assert.equal(denied.status, 403);
  assert.match(answerText(denied), /tool "delete_all" is not in this token's scope/);
  // A JSON-RPC batch cannot smuggle the call past the check either.
  const batch = await call([toolsCall('list_comments', {}), toolsCall('delete_all', { repo: 'acme/shop' })], token());
  assert.equal(batch.status, 403);
  assert.equal(store.list({}).length, 1);
});

test("a token cannot write under another run's idempotency key", async () => {
  const { call, store } = setup();
  const foreignKey = await call(toolsCall('post_comment', post, `${OTHER_RUN}:3`), token());
  assert.equal(foreignKey.status, 403);
  assert.match(answerText(foreignKey), /idempotency key does not belong to this token/);
  const otherSeq = await call(toolsCall('post_comment', post, `${RUN}:4`), token());
  assert.equal(otherSeq.status, 403);
  assert.equal(store.list({}).length, 1);

  // The token's own key works, and a repeat is deduplicated on it.
  const first = await call(toolsCall('post_comment', post, `${RUN}:3`), token());
  const again = await call(toolsCall('post_comment', post), token());
  assert.equal(first.status, 200, answerText(first));
  assert.equal(first.body?.result?.structuredContent?.created, true);
  assert.equal(again.body?.result?.structuredContent?.created, false);
  assert.equal(store.list({}).length, 2);
});

test('bad arguments get a clear MCP error naming the field; nothing is posted', async () => {
  const { call, store } = setup();
  for (const [args, field] of [
    [{ repo: 'acme/shop', pr: 'seven', body: 'x' }, 'pr'],
    [{ repo: 'acme/shop', pr: 7 }, 'body'],
    [{ repo: '', pr: 7, body: 'x' }, 'repo'],
    [{ repo: 'acme/shop', pr: -1, body: 'x' }, 'pr'],
    [{ repo: 'acme/shop', pr: 7, body: 'x'.repeat(70_000) }, 'body'],
  ] as const) {
    const a = await call(toolsCall('post_comment', args), token());
    assert.equal(a.status, 200);
    assert.equal(a.body?.result?.isError, true, JSON.stringify(args).slice(0, 80));
    assert.match(answerText(a), /Input validation error/);
    assert.match(answerText(a), new RegExp(`at ${field}\\b`));
  }
  assert.equal(store.list({}).length, 1);
});

test('a body that is not JSON is 400, an oversized one 413', async () => {
  const { call } = setup();
  assert.equal((await call('{"jsonrpc":', token())).status, 400);
  const huge = JSON.stringify(toolsCall('post_comment', { ...post, body: 'x'.repeat(MAX_REQUEST_BYTES) }));
  assert.equal((await call(huge, token())).status, 413);
});
