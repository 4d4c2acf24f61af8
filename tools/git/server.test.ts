/**
 * The git tool server validates its arguments (a revision can never smuggle an option
 * into git) and answers a clear MCP error otherwise.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { answerText, rpc, toolsCall } from '../../test/helpers/mcp.ts';
import { makeRepo } from '../../test/helpers/tool-servers.ts';
import { generateKeyPair, loadPrivateKey, loadPublicKey, mintCapability } from '../lib/capability.ts';
import { digestArgs } from '../lib/digest.ts';
import { createToolServerApp } from '../lib/server.ts';
import { registerGitTools } from './server.ts';

const pair = generateKeyPair();
let dir: string;
let call: (body: unknown) => ReturnType<typeof rpc>;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-git-'));
  const repo = makeRepo(path.join(dir, 'repo'), [
    { message: 'one', files: { 'a.txt': 'a\n' } },
    { message: 'two', files: { 'a.txt': 'a\nb\n', 'b.txt': 'b\n' } },
  ]);
  const app = createToolServerApp({ name: 'git', publicKey: loadPublicKey(pair.publicKeyPem), allowedHosts: ['127.0.0.1'], register: registerGitTools(repo) });
  // A token for exactly this call, as the gateway mints it.
  call = async (body) => {
    const { name, arguments: args } = (body as { params: { name: string; arguments: unknown } }).params;
    const token = await mintCapability(loadPrivateKey(pair.privateKeyPem), {
      use: 'call', aud: 'git', run: 'r', seq: 0, fn: 'f', tenant: 't', tool: name, args: digestArgs(args), exp: Math.floor(Date.now() / 1000) + 60,
    });
    return rpc('/mcp', body, { token, fetcher: (url, init) => app.request(url, init), headers: { host: '127.0.0.1' } });
  };
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('lists the changed files and returns the diff of a commit or range', async () => {
  const files = await call(toolsCall('list_changed_files', { range: 'HEAD' }));
  assert.deepEqual((files.body?.result?.structuredContent as { files: unknown }).files, [
    { status: 'M', path: 'a.txt' },
    { status: 'A', path: 'b.txt' },
  ]);
  const diff = await call(toolsCall('get_diff', { range: 'HEAD~1..HEAD', maxBytes: 1000 }));
  assert.match((diff.body?.result?.structuredContent as { diff: string }).diff, /^\+b$/m);
});

test('get_diff of one file: only the changes of that file; a path outside the repository is refused', async () => {
  const one = await call(toolsCall('get_diff', { range: 'HEAD', path: 'b.txt' }));
  const diff = (one.body?.result?.structuredContent as { diff: string }).diff;
  assert.match(diff, /^\+\+\+ b\/b\.txt$/m);
  assert.doesNotMatch(diff, /a\.txt/);
  for (const p of ['../etc/passwd', '/etc/passwd', ':(glob)*', '']) {
    const a = await call(toolsCall('get_diff', { range: 'HEAD', path: p }));
    assert.equal(a.body?.result?.isError, true, p);
  }
});

test('options disguised as revisions, and out-of-range sizes, are MCP errors; git never sees them', async () => {
  for (const args of [
    { range: '--output=/tmp/pwned' },
    { range: 'HEAD..--exec=id' },
    { range: 'a..b..c' },
    { range: 'HEAD; rm -rf /' },
    { range: 'x'.repeat(300) },
    { range: 42 },
    { range: 'HEAD', maxBytes: 0 },
    { range: 'HEAD', maxBytes: 'all' },
  ]) {
    const a = await call(toolsCall('get_diff', args));
    assert.equal(a.body?.result?.isError, true, JSON.stringify(args));
    assert.match(answerText(a), /Input validation error/, JSON.stringify(args));
  }
  assert.ok(!fs.existsSync('/tmp/pwned'));
});
