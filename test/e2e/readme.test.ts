/**
 * Every `sh` block of the README marked runnable runs, exactly as written, so a README
 * that drifts from the code fails here. A block is marked by its info string:
 *
 *   ```sh runnable                   needs PostgreSQL and Redis (and nothing running)
 *   ```sh runnable needs-npm-start   needs `npm start` running in the project directory
 *
 * Services come from the test environment: the block's documented defaults are pointed
 * at this test's own database (postgres://postgres@127.0.0.1:5432/baton → a fresh test
 * database), Redis (its own key prefix) and free ports (localhost:8080 → the port of
 * the `npm start` this test runs); nothing else in a block is changed. Each block runs
 * in `bash -e`; what it leaves running in the background is stopped after it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TestDatabase, createTestDatabase } from '../helpers/db.ts';
import { waitFor } from '../helpers/platform.ts';
import { freePort } from '../helpers/ports.ts';
import { ROOT } from '../helpers/processes.ts';
import { copyProject } from '../helpers/project-copy.ts';
import { REDIS_URL, dropPrefix, testPrefix } from '../helpers/redis.ts';

interface Block {
  line: number;
  needs: string | null;
  text: string;
}

function runnableBlocks(): Block[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```sh runnable(?: (\S+))?\n([\s\S]*?)^```$/gm)].map((m) => ({
    line: readme.slice(0, m.index).split('\n').length,
    needs: m[1] ?? null,
    text: m[2],
  }));
}

const blocks = runnableBlocks();
const PATH = `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;

/** The process group of a detached child: everything it started, background jobs included. */
async function stopGroup(pid: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const alive = () => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(-pid, signal);
  const deadline = Date.now() + 30_000;
  while (alive() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (alive()) process.kill(-pid, 'SIGKILL');
}

/** Runs a block in `bash -e` as its own process group; stops whatever it left running. */
async function runBlock(block: Block, opts: { cwd: string; env: Record<string, string>; substitute: Array<[string, string]> }) {
  let script = block.text;
  for (const [from, to] of opts.substitute) script = script.replaceAll(from, to);
  const child: ChildProcess = spawn('bash', ['-e', '-c', script], { cwd: opts.cwd, env: { PATH, HOME: process.env.HOME ?? '/tmp', ...opts.env }, detached: true });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => void stopGroup(child.pid as number, 'SIGKILL'), 240_000);
  // 'exit', not 'close': background jobs keep the pipes open until they are stopped.
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  await stopGroup(child.pid as number);
  return { code, output };
}

test('the README has runnable blocks, each of a known kind', () => {
  assert.ok(blocks.length >= 3, `found ${blocks.length}`);
  for (const b of blocks) assert.ok(b.needs === null || b.needs === 'needs-npm-start', `README.md:${b.line}: unknown "${b.needs}"`);
});

describe('blocks that need PostgreSQL and Redis', () => {
  let db: TestDatabase;
  let prefix: string;
  let dataDir: string;
  let env: Record<string, string>;
  const substitute: Array<[string, string]> = [];

  before(async () => {
    db = await createTestDatabase({ open: false });
    prefix = testPrefix();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-readme-'));
    const port = await freePort();
    env = {
      DATABASE_URL: db.url,
      REDIS_URL,
      BATON_REDIS_PREFIX: prefix,
      BATON_DATA_DIR: dataDir,
      HOST: '127.0.0.1',
      PORT: String(port),
      BATON_URL: `http://127.0.0.1:${port}`,
      BATON_METRICS_PORT: '0',
      BATON_API_WAIT_S: '90',
    };
    substitute.push(['postgres://postgres@127.0.0.1:5432/baton', db.url], ['redis://127.0.0.1:6379', REDIS_URL]);
  });
  after(async () => {
    await db.drop();
    await dropPrefix(prefix);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  for (const block of blocks.filter((b) => b.needs === null)) {
    test(`README.md:${block.line} runs as written`, async () => {
      const { code, output } = await runBlock(block, { cwd: ROOT, env, substitute });
      assert.equal(code, 0, output);
      assert.doesNotMatch(output, /WARNING|ERROR:|Error:/, output);
      if (block.text.includes('baton run pr-review --follow')) {
        // The demo ran end to end: tools found, tokens signed, the review posted.
        assert.match(output, /✓ {2}0 fetch_diff +tool/, output);
        assert.match(output, /✓ {2}2 post +tool/, output);
        assert.match(output, /^run succeeded: 3 steps, 3 attempts, /m, output);
      }
      if (block.text.includes('psql')) {
        const rows = Number(/^\((\d+) rows?\)$/m.exec(output)?.[1] ?? 0);
        assert.ok(rows >= 1, `psql printed rows:\n${output}`);
      }
    });
  }
});

describe('blocks that need npm start', () => {
  let project: ReturnType<typeof copyProject>;
  let port: number;
  let start: ChildProcess;
  let startOutput = '';

  before(async () => {
    // A fresh copy of the project, so `.baton/` and `functions/…` resolve as for a new user.
    project = copyProject('baton-readme-start-');
    port = await freePort();
    start = spawn('npm', ['start', '--silent'], {
      cwd: project.dir,
      env: { PATH, HOME: process.env.HOME ?? '/tmp', PORT: String(port), BATON_METRICS_PORT: '0' },
      detached: true,
    });
    start.stdout?.on('data', (d: Buffer) => (startOutput += d.toString()));
    start.stderr?.on('data', (d: Buffer) => (startOutput += d.toString()));
    await waitFor(() => /Ready\. Ctrl-C to stop\./.test(startOutput), `npm start to be ready:\n${startOutput}`, 120_000);
  });
  after(async () => {
    await stopGroup(start.pid as number, 'SIGINT');
    project.remove();
  });

  for (const block of blocks.filter((b) => b.needs === 'needs-npm-start')) {
    test(`README.md:${block.line} runs as written while npm start runs`, async () => {
      const { code, output } = await runBlock(block, { cwd: project.dir, env: {}, substitute: [['localhost:8080', `localhost:${port}`]] });
      assert.equal(code, 0, output);
      if (block.text.includes('/v1/functions/pr-review/runs')) {
        const created = /\{"id":"([0-9a-f-]{36})","status":"queued"/.exec(output);
        assert.ok(created, output);
        // The CLI found npm start and got the same run back for the same Idempotency-Key.
        assert.match(output, new RegExp(`"id":"${created[1]}","function":"pr-review","status":"(running|queued|succeeded)"`));
        assert.match(output, /^event: run\.finished$/m);
        assert.match(output, /"replayOf":"/);
        assert.match(output, /"code":"run_finished"/, 'the signal to a finished run is refused, in JSON');
      }
    });
  }
});
