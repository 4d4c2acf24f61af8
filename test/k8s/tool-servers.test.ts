/**
 * Tool server processes as their pods run them: the real `node tools/<server>/server.ts`
 * (and, where tini is installed, under `tini --` as the image's command does).
 *   - The git server is ready only when its repository is there and readable, and it
 *     serves a repository owned by another user (a volume filled by an init container
 *     or a claim), which git otherwise refuses as "dubious ownership".
 *   - On SIGTERM a server stops taking connections, finishes the call in flight, and
 *     exits 0; a call that outlasts the drain is cut and the process exits anyway.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ROOT } from '../helpers/spawn.ts';

const TINI = '/usr/bin/tini';
const dirs: string[] = [];
const children: Proc[] = [];

interface Proc {
  child: ChildProcess;
  readonly alive: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first output line (stdout or stderr, seen or to come) that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  signal(sig: NodeJS.Signals): void;
}

/** A child with only PATH and `env` in its environment; output kept line by line. */
function spawnProcess(cmd: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      for (const w of waiters) w();
    });
  }
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      alive = false;
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    exited,
    get alive() {
      return alive;
    },
    waitForLine(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((l) => pattern.test(l));
          if (line !== undefined) finish(() => resolve(line));
          else if (!alive) finish(() => reject(new Error(`${cmd} exited before printing ${pattern}:\n${lines.join('\n')}`)));
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`no line matching ${pattern} in ${timeoutMs} ms:\n${lines.join('\n')}`))), timeoutMs);
        const finish = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    signal(sig) {
      if (alive) process.kill(child.pid as number, sig);
    },
  };
}
after(async () => {
  for (const c of children) if (c.alive) c.signal('SIGKILL');
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-tool-'));
  dirs.push(d);
  return d;
}

/** A repository with two commits, the second changing one file. */
function makeRepo(): string {
  const repo = path.join(tmpdir(), 'repo');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.email=t@example.org', '-c', 'user.name=t', ...args]);
  fs.mkdirSync(repo);
  git('init', '-q');
  fs.writeFileSync(path.join(repo, 'a.txt'), 'one\n');
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  fs.writeFileSync(path.join(repo, 'a.txt'), 'two\n');
  git('commit', '-q', '-am', 'two');
  return repo;
}

async function startTool(server: string, env: Record<string, string>, viaTini = false): Promise<{ proc: Proc; url: string }> {
  const base = { PORT: '0', HOST: '127.0.0.1', BATON_TOOL_AUTH: 'off', ...env };
  const script = `tools/${server}/server.ts`;
  const proc = viaTini ? spawnProcess(TINI, ['--', process.execPath, script], base) : spawnProcess(process.execPath, [script], base);
  children.push(proc);
  const line = await proc.waitForLine(/"url":"http:\/\/127\.0\.0\.1:\d+\/mcp"/, 20_000);
  return { proc, url: (JSON.parse(line) as { url: string }).url.replace(/\/mcp$/, '') };
}

async function call(url: string, tool: string, args: Record<string, unknown>) {
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
  try {
    return (await client.callTool({ name: tool, arguments: args })) as { isError?: boolean; structuredContent?: Record<string, unknown> };
  } finally {
    await client.close().catch(() => {});
  }
}

test('git: not ready while its repository is missing, ready once it is there', async () => {
  const dir = tmpdir();
  const repo = path.join(dir, 'repo');
  const { url } = await startTool('git', { GIT_REPO: repo });
  const missing = await fetch(`${url}/readyz`);
  assert.equal(missing.status, 503);
  assert.match(((await missing.json()) as { reason: string }).reason, /repo/);
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive all the same: a restart would not help');
  fs.cpSync(makeRepo(), repo, { recursive: true });
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  fs.writeFileSync(path.join(repo, '.git', 'HEAD'), 'garbage\n');
  assert.equal((await fetch(`${url}/readyz`)).status, 503, 'a repository git cannot read is not ready either');
});

test('git: serves a repository owned by another user (safe.directory)', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to hand the repository to another uid');
  const repo = makeRepo();
  execFileSync('chown', ['-R', '4242:4242', repo]);
  const { url } = await startTool('git', { GIT_REPO: repo });
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  const res = await call(url, 'get_diff', { range: 'HEAD' });
  assert.ok(!res.isError, JSON.stringify(res));
  assert.match(String(res.structuredContent?.diff), /-one\n\+two/);
});

/** A GitHub API stand-in that holds each comment POST until released. */
async function heldGitHub() {
  let release: () => void = () => {};
  let arrived: () => void = () => {};
  const posted = new Promise<void>((resolve) => (arrived = resolve));
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(404).end('{}');
    arrived();
    release = () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 7, html_url: 'https://example.org/c/7', body: 'hi', user: { login: 'bot' }, created_at: new Date(0).toISOString() }));
    };
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posted,
    release: () => release(),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const viaTini of [false, true]) {
  test(`SIGTERM${viaTini ? ' to tini' : ''}: the call in flight finishes, new connections are refused, the server exits 0`, async (t) => {
    if (viaTini && !fs.existsSync(TINI)) return t.skip(`${TINI} is not installed (the image has it)`);
    const gh = await heldGitHub();
    t.after(() => gh.close());
    const { proc, url } = await startTool('github', { GITHUB_TOKEN: 'tkn', GITHUB_API_URL: gh.url, BATON_TOOL_DRAIN_MS: '20000' }, viaTini);
    const inFlight = call(url, 'post_comment', { repo: 'acme/shop', pr: 1, body: 'hi' });
    await gh.posted;
    proc.signal('SIGTERM');
    await proc.waitForLine(/"stopping":true/, 10_000);
    await assert.rejects(fetch(`${url}/healthz`), 'no new connections once stopping');
    assert.ok(proc.alive, 'still running while a call is in flight');
    gh.release();
    const res = await inFlight;
    assert.ok(!res.isError, JSON.stringify(res));
    assert.equal((res.structuredContent?.comment as { id: number }).id, 7);
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
  });
}

test('SIGTERM: a call that outlasts the drain is cut, and the server exits anyway', async (t) => {
  const gh = await heldGitHub();
  t.after(() => gh.close());
  const { proc, url } = await startTool('github', { GITHUB_TOKEN: 'tkn', GITHUB_API_URL: gh.url, BATON_TOOL_DRAIN_MS: '300' });
  const inFlight = call(url, 'post_comment', { repo: 'acme/shop', pr: 1, body: 'hi' }).catch((err: Error) => err);
  await gh.posted;
  proc.signal('SIGTERM');
  const exit = await proc.exited;
  assert.equal(exit.signal, null);
  assert.equal(exit.code, 1, 'exit 1: it could not finish everything');
  assert.ok((await inFlight) instanceof Error);
});
