/**
 * Tokens are short-lived by rule, not by trust, and the stateless MCP endpoints hold
 * nothing open. Real tool server processes, as deployed:
 *   - a token whose lifetime (exp − iat) exceeds BATON_TOOL_MAX_TOKEN_S (default 900)
 *     is refused, however validly signed, and so is one issued in the future beyond a
 *     small clock skew;
 *   - GET /mcp and DELETE /mcp answer 405 at once (no event stream that could outlive
 *     the token that opened it, no session to end);
 *   - a server that could touch tenants' repositories says loudly at start when it
 *     enforces no tenant policy, and is quiet when it has one.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type MintClaims, generateKeyPair, loadPrivateKey, mintCapability } from '../../tools/lib/capability.ts';
import { digestArgs } from '../../tools/lib/digest.ts';
import { answerText, rpc, toolsCall } from '../helpers/mcp.ts';
import { type Child, spawnNode } from '../helpers/spawn.ts';
import { makeRepo } from '../helpers/tool-servers.ts';

const keys = generateKeyPair();
const signer = loadPrivateKey(keys.privateKeyPem);
const publicKey = Buffer.from(keys.publicKeyPem).toString('base64');
let dir: string;
const children: Child[] = [];
const url: Record<string, string> = {};

async function start(name: string, file: string, env: Record<string, string>): Promise<Child> {
  const child = spawnNode([file], { PORT: '0', HOST: '127.0.0.1', BATON_TOOL_PUBLIC_KEY: publicKey, ...env });
  children.push(child);
  url[name] = (JSON.parse((await child.waitFor(/^\{.*"url".*\}$/m))[0]) as { url: string }).url;
  return child;
}

let reviewOpen: Child;
let reviewPolicy: Child;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-token-rules-'));
  const repo = makeRepo(path.join(dir, 'repo'), [{ message: 'one', files: { 'a.txt': 'a\n' } }]);
  await start('git', 'tools/git/server.ts', { GIT_REPO: repo });
  await start('git120', 'tools/git/server.ts', { GIT_REPO: repo, BATON_TOOL_MAX_TOKEN_S: '120' });
  reviewOpen = await start('review', 'tools/review/server.ts', {});
  reviewPolicy = await start('reviewPolicy', 'tools/review/server.ts', { BATON_TOOL_POLICY: '{"tenants":{"acme":{"repos":["acme/*"]}}}' });
});

after(async () => {
  await Promise.all(children.map((c) => c.stop()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const args = { range: 'HEAD' };
const now = () => Math.floor(Date.now() / 1000);
const token = (iat: number, exp: number) =>
  mintCapability(signer, { use: 'call', aud: 'git', run: 'r', seq: 0, fn: 'f', tenant: 'acme', tool: 'get_diff', args: digestArgs(args), iat, exp } as MintClaims);

async function diff(at: string, iat: number, exp: number) {
  return rpc(at, toolsCall('get_diff', args), { token: await token(iat, exp) });
}

test('a token that lives longer than BATON_TOOL_MAX_TOKEN_S is refused (default 900 s)', async () => {
  const t0 = now();
  assert.equal((await diff(url.git, t0, t0 + 900)).status, 200, 'exactly 900 s is the limit');
  const long = await diff(url.git, t0, t0 + 901);
  assert.equal(long.status, 401);
  assert.match(answerText(long), /token lifetime 901 s exceeds the maximum of 900 s \(BATON_TOOL_MAX_TOKEN_S\)/);
  const day = await diff(url.git, t0, t0 + 86_400);
  assert.equal(day.status, 401);

  assert.equal((await diff(url.git120, t0, t0 + 120)).status, 200);
  const over = await diff(url.git120, t0, t0 + 121);
  assert.equal(over.status, 401);
  assert.match(answerText(over), /maximum of 120 s/);
});

test('every refusal is a line in the server\'s log, with the verified token\'s run and tenant when there is one', async () => {
  const t0 = now();
  await diff(url.git120, t0, t0 + 600);
  const wrongArgs = await rpc(url.git, toolsCall('get_diff', { range: 'HEAD~1' }), { token: await token(t0, t0 + 60) });
  assert.equal(wrongArgs.status, 403);
  const lines = (child: Child) =>
    child
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"refused":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const [git, git120] = children;
  assert.ok(lines(git120).some((l) => l.status === 401 && /exceeds the maximum of 120 s/.test(String(l.reason)) && l.server === 'git'));
  const mismatch = lines(git).find((l) => /^token_args_mismatch/.test(String(l.reason)));
  assert.deepEqual({ ...mismatch, reason: undefined, at: undefined }, { server: 'git', status: 403, reason: undefined, tenant: 'acme', run: 'r', seq: 0, fn: 'f', tool: 'get_diff', refused: true, at: undefined });
});

test('a token issued in the future is refused beyond a small clock skew', async () => {
  const t0 = now();
  const ahead = await diff(url.git, t0 + 120, t0 + 180);
  assert.equal(ahead.status, 401);
  assert.match(answerText(ahead), /token issued in the future/);
  // Backdating iat does not help either: the lifetime rule counts from iat.
  assert.equal((await diff(url.git, t0 - 900, t0 + 60)).status, 401);
  assert.equal((await diff(url.git, t0 + 2, t0 + 60)).status, 200, 'two seconds of skew is fine');
});

test('GET /mcp and DELETE /mcp answer 405 at once, with or without a token, on every server', async () => {
  const good = await token(now(), now() + 60);
  for (const [name, at] of Object.entries(url)) {
    for (const method of ['GET', 'DELETE']) {
      for (const auth of [null, `Bearer ${good}`]) {
        const res = await fetch(at, {
          method,
          headers: { accept: 'text/event-stream', 'mcp-session-id': 'anything', ...(auth ? { authorization: auth } : {}) },
          signal: AbortSignal.timeout(5000),
        });
        assert.equal(res.status, 405, `${name} ${method}`);
        assert.equal(res.headers.get('allow'), 'POST');
        assert.doesNotMatch(res.headers.get('content-type') ?? '', /event-stream/);
        await res.text();
      }
    }
  }
});

test('without BATON_TOOL_POLICY a server warns loudly at start; with one it does not', () => {
  assert.match(reviewOpen.stderr(), /review: WARNING: no BATON_TOOL_POLICY is set: every tenant's runs may touch ANY repository/);
  assert.doesNotMatch(reviewPolicy.stderr(), /BATON_TOOL_POLICY/);
});
