/**
 * The README's first command, for real: `npm start` in a fresh directory (a copy of the
 * project without .baton/ or .git) runs the demo to completion on the embedded default;
 * a second start finds the earlier run; Ctrl-C (SIGINT) stops it cleanly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { copyProject } from '../helpers/project-copy.ts';

let project: ReturnType<typeof copyProject>;
let dir: string;

before(() => {
  project = copyProject('baton-start-');
  dir = project.dir;
});
after(() => project.remove());

function npmStart(args: string[], stopWhen?: RegExp) {
  let until = stopWhen;
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', BATON_METRICS_PORT: '0' };
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'OPENAI_API_KEY', 'BATON_AUTH', 'BATON_DATA_DIR']) delete env[key];
  // Its own process group, so Ctrl-C can be sent as a terminal sends it: to the whole group.
  const child = spawn('npm', ['start', '--silent', '--', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), s);
    } catch {
      // already gone
    }
  };
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (until?.test(out)) {
      until = undefined;
      signal('SIGINT');
    }
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const timer = setTimeout(() => signal('SIGKILL'), 120_000);
  return new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) =>
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code, signal: sig, out, err });
    }),
  );
}

test('npm start runs the demo to completion on the embedded default, keeps its runs, stops on Ctrl-C', async () => {
  const first = await npmStart(['--once']);
  assert.equal(first.code, 0, `${first.out}\n${first.err}`);
  assert.match(first.out, /embedded PGlite/);
  assert.match(first.out, /offline model baton-offline/);
  assert.match(first.out, /curl -sS -X POST http:\/\/127\.0\.0\.1:\d+\/v1\/functions\/pr-agent\/runs/);
  // The agent loop, one line per turn and per tool call; the diffs read in parallel (branches ⋔1, ⋔2, …).
  const T = '(?:\\d+ ms|\\d+\\.\\d s|\\d+ min \\d+ s)';
  assert.match(first.out, new RegExp(`✓ +0 model +llm +${T} +asks git_list_changed_files`));
  assert.match(first.out, new RegExp(`✓ +1 tool +tool +${T} +git_list_changed_files → ok`));
  assert.match(first.out, new RegExp(`✓ +2 model +llm +${T} +asks git_get_diff`));
  assert.match(first.out, new RegExp(`✓ +\\d+ tool ⋔1 +tool +${T} +git_get_diff → ok`));
  assert.match(first.out, new RegExp(`✓ +\\d+ tool_results +compute +${T} +\\d+ results in call order`));
  assert.match(first.out, new RegExp(`✓ +\\d+ tool +tool +${T} +review_post_comment → ok`));
  assert.match(first.out, new RegExp(`✓ +\\d+ model +llm +${T} +answers: Reviewed acme/shop#42`));
  assert.match(first.out, /Run succeeded in (?:\d+ ms|\d+\.\d s|\d+ min \d+ s)/);
  assert.match(first.out, /posted review comment #\d+/);
  assert.ok(fs.existsSync(path.join(dir, '.baton/pgdata')), 'the database lives under .baton/');

  // Second start: the first run is still there; Ctrl-C once ready stops it with exit 0.
  const second = await npmStart([], /Ready\. Ctrl-C to stop\./);
  // npm itself dies of the SIGINT (as in a terminal); Baton finishes its shutdown and says so.
  assert.ok(second.code === 0 || second.signal === 'SIGINT', `${second.code} ${second.signal}\n${second.out}\n${second.err}`);
  assert.match(second.out, /Stopping… \(\d+ step\(s\) in flight get up to 5 s; Ctrl-C again to exit at once\)\nStopped\.\n$/, second.err);
  assert.doesNotMatch(second.err, /Error|error/);
  assert.match(second.out, /1 earlier run\(s\)/);
  assert.match(second.out, /Run succeeded/);
  assert.ok(!fs.existsSync(path.join(dir, '.baton/lock')), 'the lock is released on exit');
});
