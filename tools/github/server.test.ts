/**
 * The github tool server against a local stub of the GitHub REST API: it posts with
 * the token only it holds, dedupes by the step's key across restarts, validates its
 * arguments and reports GitHub's refusals clearly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startGitHubStub, type GitHubStub } from '../../test/helpers/github-stub.ts';
import { answerText, rpc, toolsCall } from '../../test/helpers/mcp.ts';
import { generateKeyPair, loadPrivateKey, loadPublicKey, mintCapability } from '../lib/capability.ts';
import { digestArgs } from '../lib/digest.ts';
import { createToolServerApp } from '../lib/server.ts';
import { createGitHubClient } from './client.ts';
import { githubEnv, registerGitHubTools } from './server.ts';

const TOKEN = 'ghp_stubtoken_0123456789';
const pair = generateKeyPair();
const signer = loadPrivateKey(pair.privateKeyPem);
const RUN = '0190f5d2-0000-7000-8000-0000000000c1';
let stub: GitHubStub;

before(async () => {
  stub = await startGitHubStub({ token: TOKEN, pageSize: 2 });
});
after(() => stub.close());

/** A fresh tool server process, as far as state goes (a restart). */
function toolServer(token = TOKEN, apiUrl = stub.url) {
  const app = createToolServerApp({
    name: 'github',
    publicKey: loadPublicKey(pair.publicKeyPem),
    allowedHosts: ['127.0.0.1'],
    register: registerGitHubTools(createGitHubClient({ apiUrl, token: () => token })),
  });
  // A token for exactly this call, as the gateway mints it.
  return async (body: { params: { name: string; arguments: unknown } }, seq = 1) =>
    rpc('/mcp', body, {
      fetcher: (url, init) => app.request(url, init),
      headers: { host: '127.0.0.1' },
      token: await mintCapability(signer, {
        use: 'call',
        aud: 'github',
        run: RUN,
        seq,
        fn: 'gh-review',
        tenant: 'acme',
        tool: body.params.name,
        args: digestArgs(body.params.arguments),
        exp: Math.floor(Date.now() / 1000) + 60,
      }),
    });
}

const posts = () => stub.requests.filter((r) => r.method === 'POST').length;

test('posts once per step key, even after a restart, finding its marker across pages', async () => {
  const call = toolServer();
  for (let i = 0; i < 5; i++) await call(toolsCall('post_comment', { repo: 'acme/shop', pr: 7, body: `earlier ${i}` }), 100 + i);
  const before = posts();

  const first = await call(toolsCall('post_comment', { repo: 'acme/shop', pr: 7, body: 'LGTM' }), 1);
  assert.equal(first.body?.result?.isError, undefined, answerText(first));
  const created = first.body?.result?.structuredContent as { created: boolean; comment: { id: number; body: string } };
  assert.equal(created.created, true);
  assert.equal(created.comment.body, 'LGTM', 'the marker is not shown');
  const stored = stub.comments.get('acme/shop#7')?.at(-1);
  assert.equal(stored?.body, `LGTM\n\n<!-- baton:${RUN}:1 -->`);

  const restarted = toolServer();
  const again = await restarted(toolsCall('post_comment', { repo: 'acme/shop', pr: 7, body: 'LGTM' }), 1);
  const repeat = again.body?.result?.structuredContent as { created: boolean; comment: { id: number } };
  assert.equal(repeat.created, false);
  assert.equal(repeat.comment.id, created.comment.id);
  assert.equal(posts(), before + 1, 'one POST for the step, whatever the deliveries');
  assert.ok(stub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'every GitHub request carried the tool server\'s token');
});

test('concurrent deliveries of one step post once', async () => {
  const call = toolServer();
  const before = posts();
  const answers = await Promise.all([1, 2, 3].map(() => call(toolsCall('post_comment', { repo: 'acme/shop', pr: 9, body: 'once' }), 5)));
  assert.deepEqual(answers.map((a) => (a.body?.result?.structuredContent as { created: boolean }).created).sort(), [false, false, true]);
  assert.equal(posts(), before + 1);
});

test("a marker in the caller's text is defused, so it cannot pre-empt another step's comment", async () => {
  const call = toolServer();
  const forged = `ignore this <!-- baton:${RUN}:2 -->`;
  await call(toolsCall('post_comment', { repo: 'acme/shop', pr: 8, body: forged }), 50);
  assert.ok(!stub.comments.get('acme/shop#8')?.[0].body.includes(`<!-- baton:${RUN}:2 -->`));
  const real = await call(toolsCall('post_comment', { repo: 'acme/shop', pr: 8, body: 'the real review' }), 2);
  assert.equal((real.body?.result?.structuredContent as { created: boolean }).created, true);
  const listed = await call(toolsCall('list_comments', { repo: 'acme/shop', pr: 8 }));
  assert.deepEqual((listed.body?.result?.structuredContent as { comments: Array<{ body: string }> }).comments.map((c) => c.body), [
    'ignore this &lt;!-- baton:' + `${RUN}:2 -->`,
    'the real review',
  ]);
});

test('bad arguments are a clear MCP error and never reach GitHub', async () => {
  const call = toolServer();
  const before = stub.requests.length;
  for (const args of [
    { repo: 'acme', pr: 1, body: 'x' },
    { repo: 'acme/..', pr: 1, body: 'x' },
    { repo: '../../user/x', pr: 1, body: 'x' },
    { repo: 'acme/shop?x=1', pr: 1, body: 'x' },
    { repo: 'acme/shop', pr: 0, body: 'x' },
    { repo: 'acme/shop', pr: 1, body: '' },
    { repo: 'acme/shop', pr: 1.5, body: 'x' },
  ]) {
    const a = await call(toolsCall('post_comment', args));
    assert.equal(a.body?.result?.isError, true, JSON.stringify(args));
    assert.match(answerText(a), /Input validation error/);
  }
  assert.equal(stub.requests.length, before);
});

test("GitHub's refusal is reported clearly, without the token", async () => {
  const call = toolServer('ghp_wrong');
  const a = await call(toolsCall('post_comment', { repo: 'acme/shop', pr: 1, body: 'x' }));
  assert.equal(a.body?.result?.isError, true);
  assert.match(answerText(a), /GitHub answered 401 to GET \/repos\/acme\/shop\/issues\/1\/comments: Bad credentials \(the tool server's GitHub token was refused\)/);
  assert.doesNotMatch(answerText(a), /ghp_/);
});

test('a pagination link to another origin is not followed with the token', async () => {
  const other = await startGitHubStub({ token: TOKEN });
  const hostile = await startGitHubStub({ token: TOKEN, pageSize: 1, linkOrigin: other.url });
  try {
    const gh = createGitHubClient({ apiUrl: hostile.url, token: () => TOKEN });
    await gh.postComment({ owner: 'a', name: 'b' }, 1, 'one');
    await gh.postComment({ owner: 'a', name: 'b' }, 1, 'two');
    await assert.rejects(gh.listComments({ owner: 'a', name: 'b' }, 1), /refusing to send the token to http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(other.requests.length, 0);
  } finally {
    await Promise.all([other.close(), hostile.close()]);
  }
});

test('the token comes from GITHUB_TOKEN or a mounted file, re-read on every call', () => {
  assert.throws(() => githubEnv({}), /GITHUB_TOKEN or GITHUB_TOKEN_FILE/);
  assert.equal(githubEnv({ GITHUB_TOKEN: 'a' }).token(), 'a');
  assert.equal(githubEnv({ GITHUB_TOKEN: 'a' }).apiUrl, 'https://api.github.com');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-gh-'));
  try {
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'first\n');
    const env = githubEnv({ GITHUB_TOKEN_FILE: file, GITHUB_API_URL: 'http://127.0.0.1:1' });
    assert.equal(env.token(), 'first');
    fs.writeFileSync(file, 'rotated\n');
    assert.equal(env.token(), 'rotated');
    assert.equal(env.apiUrl, 'http://127.0.0.1:1');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
