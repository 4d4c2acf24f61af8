/** The git tool on real history: merge commits, ranges, the root commit. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createToolServerApp, listen } from '../lib/server.ts';
import { registerGitTools } from './server.ts';

let repo: string;
let server: { url: string; close: () => Promise<void> };

before(async () => {
  repo = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-git-'));
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { stdio: 'ignore' });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(repo, 'a.txt'), 'one\n');
  git('add', '.');
  git('commit', '-q', '-m', 'first');
  git('checkout', '-q', '-b', 'feature');
  fs.writeFileSync(path.join(repo, 'b.txt'), 'two\n');
  git('add', '.');
  git('commit', '-q', '-m', 'feature');
  git('checkout', '-q', 'main');
  fs.writeFileSync(path.join(repo, 'a.txt'), 'one\nmore\n');
  git('commit', '-q', '-am', 'main moves');
  git('merge', '-q', '--no-ff', '-m', 'merge feature', 'feature');
  const app = createToolServerApp({ name: 'git', publicKey: null, allowedHosts: ['127.0.0.1'], register: registerGitTools(repo) });
  server = await listen(app, 0, '127.0.0.1');
});
after(async () => {
  await server.close();
  fs.rmSync(repo, { recursive: true, force: true });
});

async function call(name: string, args: Record<string, unknown>) {
  const client = new Client({ name: 't', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
  try {
    return (await client.callTool({ name, arguments: args })) as { structuredContent?: Record<string, unknown>; isError?: boolean; content: Array<{ text: string }> };
  } finally {
    await client.close();
  }
}

test('a merge commit shows what it brought in (against its first parent)', async () => {
  const res = await call('get_diff', { range: 'HEAD' });
  assert.match(String(res.structuredContent?.diff), /^diff --git a\/b\.txt b\/b\.txt/m);
  const files = await call('list_changed_files', { range: 'HEAD' });
  assert.deepEqual(files.structuredContent?.files, [{ status: 'A', path: 'b.txt' }]);
});

test('a range, and the root commit', async () => {
  const range = await call('list_changed_files', { range: 'HEAD~1..HEAD' });
  assert.deepEqual(range.structuredContent?.files, [{ status: 'A', path: 'b.txt' }]);
  const root = await call('get_diff', { range: 'HEAD~2' });
  assert.match(String(root.structuredContent?.diff), /\+one/);
});
