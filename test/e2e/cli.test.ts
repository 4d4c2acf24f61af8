/**
 * The CLI as people use it, with real processes: help for every verb (and nothing
 * run behind it), one line of usage for a mistake (exit 2), one readable line for an
 * error, distinct exit codes, and the verbs for everything the API can do
 * (runs, runs ID, cancel, retry, replay, signal; --json on every read verb).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import crypto from 'node:crypto';
import pg from 'pg';
import { loadFunctions } from '../../runtime/functions.ts';
import { cli } from '../helpers/cli.ts';
import { SERVER_URL } from '../helpers/db.ts';
import { type TestPlatform, startTestPlatform, waitFor, waitForRun } from '../helpers/platform.ts';
import { freePort } from '../helpers/ports.ts';
import { type BatonProcess, ROOT, spawnBaton, startApiProcess, stopAll } from '../helpers/processes.ts';

const VERBS = ['dev', 'api', 'worker', 'tools', 'migrate', 'deploy', 'run', 'runs', 'signal', 'functions', 'keys'];

describe('help and usage', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-cli-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('baton --help lists every verb and exits 0; baton alone exits 2', async () => {
    const help = await cli(['--help'], { cwd: dir });
    assert.equal(help.code, 0);
    for (const verb of VERBS) assert.match(help.stdout, new RegExp(`^  ${verb} +\\S`, 'm'), verb);
    const bare = await cli([], { cwd: dir });
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^usage: baton <verb>/);
  });

  test('baton VERB --help prints its usage and exits 0, running nothing (migrate creates no database)', async () => {
    for (const verb of VERBS) {
      for (const flag of ['--help', '-h']) {
        const r = await cli([verb, flag], { cwd: dir });
        assert.equal(r.code, 0, `${verb} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^usage: baton ${verb}\\b`), `${verb} ${flag}`);
        assert.equal(r.stderr, '', `${verb} ${flag} wrote to stderr`);
      }
    }
    // Also after other arguments, and without DATABASE_URL: still nothing happens.
    assert.equal((await cli(['migrate', '--help'], { cwd: dir })).code, 0);
    assert.equal((await cli(['keys', 'create', '--tenant', 'x', '--help'], { cwd: dir })).code, 0);
    assert.deepEqual(fs.readdirSync(dir), [], 'no .baton/ (nor pgdata) was created');
  });

  test('baton migrate without DATABASE_URL refuses in one line and creates nothing', async () => {
    const r = await cli(['migrate'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /DATABASE_URL is not set/);
    const keys = await cli(['keys', 'list'], { cwd: dir });
    assert.equal(keys.code, 2);
    assert.match(keys.stderr, /no embedded database/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  test('an unknown option: the error and one line of usage, exit 2, for every verb', async () => {
    for (const verb of VERBS) {
      const r = await cli([verb, '--bogus'], { cwd: dir });
      assert.equal(r.code, 2, `${verb}: ${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 2, `${verb}: ${r.stderr}`);
      assert.equal(lines[0], `baton ${verb}: Unknown option '--bogus'`);
      assert.match(lines[1], new RegExp(`^usage: baton ${verb} .*\\(baton ${verb} --help\\)$`));
      assert.equal(r.stdout, '');
    }
    const verb = await cli(['lanch'], { cwd: dir });
    assert.equal(verb.code, 2);
    assert.match(verb.stderr, /^baton: unknown verb "lanch"; the verbs are dev, api/);
  });
});

test('baton migrate creates a database that does not exist yet, then applies every migration (views included)', async () => {
  const name = `baton_t_${Math.floor(Date.now() / 1000)}_${crypto.randomBytes(4).toString('hex')}`;
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: SERVER_URL });
  await admin.connect();
  try {
    const first = await cli(['migrate'], { env: { DATABASE_URL: url.toString() } });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`^created database "${name}" on `, 'm'));
    assert.match(first.stderr, /applied \d+ migration\(s\)/);
    const again = await cli(['migrate'], { env: { DATABASE_URL: url.toString() } });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /is up to date/);
    assert.doesNotMatch(again.stderr, /created database/);
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    const { rows } = await db.query(`select table_name from information_schema.views where table_schema = 'public' order by 1`);
    await db.end();
    assert.deepEqual(rows.map((r) => r.table_name), ['run_summary', 'slow_steps', 'step_timeline', 'token_usage_by_function']);
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  }
});

describe('against a running API', () => {
  let t: TestPlatform;
  let api: BatonProcess & { url: string };
  let env: Record<string, string>;
  let functionsDir: string;
  let release: (() => void) | null = null;

  before(async () => {
    // pr-review and a function that waits for a signal.
    functionsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-cli-fns-'));
    fs.symlinkSync(path.join(ROOT, 'functions/pr-review'), path.join(functionsDir, 'pr-review'));
    fs.symlinkSync(path.join(ROOT, 'test/fixtures/functions/approval'), path.join(functionsDir, 'approval'));
    t = await startTestPlatform({
      functions: await loadFunctions(functionsDir),
      env: { BATON_FUNCTIONS_DIR: functionsDir, BATON_MAX_ATTEMPTS: '2' },
      // A test can hold the review's LLM call (to cancel a run while it is in flight).
      llm: { gate: () => (release ? new Promise<void>((resolve) => (release = resolve)) : undefined) },
    });
    api = await startApiProcess({ ...t.env, BATON_METRICS_PORT: '0' });
    env = { BATON_URL: api.url, BATON_FUNCTIONS_DIR: functionsDir, BATON_API_WAIT_S: '2' };
  });
  after(async () => {
    release?.();
    await stopAll([api], 'SIGTERM');
    await t.close();
    fs.rmSync(functionsDir, { recursive: true, force: true });
  });

  test('baton run nope says the function does not exist, in one line', async () => {
    const r = await cli(['run', 'nope'], { env });
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^baton run: function_not_found: no function named "nope" \(the API serves: approval, pr-review\)$/m);
    assert.doesNotMatch(r.stderr, /ENOENT|example\.json|at /);
    const withInput = await cli(['run', 'nope', '{}'], { env });
    assert.equal(withInput.code, 1);
    assert.match(withInput.stderr, /function_not_found: no function named "nope"/);
  });

  test('input that is not JSON names where it goes wrong (exit 2)', async () => {
    const inline = await cli(['run', 'pr-review', '{"repo": "acme/shop", "pr": }'], { env });
    assert.equal(inline.code, 2);
    assert.match(inline.stderr, /^baton run: the input is not valid JSON: line 1, column 29 \(position 28\): found "}"$/m);
    const file = path.join(functionsDir, 'bad.json');
    fs.writeFileSync(file, '{\n  "repo": "acme/shop",\n  "pr": 7,\n}\n');
    const fromFile = await cli(['run', 'pr-review', file], { env });
    assert.equal(fromFile.code, 2);
    assert.match(fromFile.stderr, /bad\.json is not valid JSON: line 4, column 1 \(position \d+\): found "}\\n"/);
    const stdin = await cli(['run', 'pr-review', '-'], { env, input: '[1,' });
    assert.equal(stdin.code, 2);
    assert.match(stdin.stderr, /the input on stdin is not valid JSON: line 1, column 4/);
    const missing = await cli(['run', 'pr-review', 'no-such-file.json'], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no file "no-such-file\.json"/);
    // The API's own validation, one line too.
    const invalid = await cli(['run', 'pr-review', '{"repo":"acme/shop","pr":"7"}'], { env });
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^baton run: invalid_input: input\.pr: /m);
  });

  test('exit codes: 0 succeeded, 1 failed, 3 the API could not be reached', async () => {
    const ok = await cli(['run', 'pr-review', '--follow'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^run succeeded: 3 steps, 3 attempts, 11 input \+ 7 output tokens, \d/m);

    const failed = await cli(['run', 'pr-review', '{"repo":"acme/shop","pr":7,"range":"no-such-revision"}', '--follow'], { env });
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /✗ {2}0 fetch_diff +tool +attempt 1: /);
    assert.match(failed.stderr, /^run failed: 1 step, 2 attempts, /m);
    assert.match(failed.stdout, /"code":/);

    const port = await freePort();
    const started = Date.now();
    const down = await cli(['runs'], { env: { ...env, BATON_URL: `http://127.0.0.1:${port}`, BATON_API_WAIT_S: '1' } });
    assert.equal(down.code, 3);
    assert.match(down.stderr, /waiting for the API at http:\/\/127\.0\.0\.1:\d+…/);
    assert.match(down.stderr, /^baton runs: cannot reach the API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED for 1 s\)/m);
    assert.ok(Date.now() - started >= 900, 'it waited for the API first');
  });

  test('a client started before the API waits for it instead of failing', async (tc) => {
    const port = await freePort();
    const client = cli(['functions'], { env: { ...env, BATON_URL: `http://127.0.0.1:${port}`, BATON_API_WAIT_S: '30' } });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const late = await startApiProcess({ ...t.env, PORT: String(port), BATON_METRICS_PORT: '0' });
    tc.after(() => stopAll([late], 'SIGTERM'));
    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pr-review: fetch_diff → review → post/m);
    assert.match(r.stderr, /waiting for the API/);
  });

  test('read verbs: runs, runs ID, functions, keys list, each with --json', async () => {
    const run = await cli(['run', 'pr-review', '--json'], { env });
    assert.equal(run.code, 0, run.stderr);
    const { id } = JSON.parse(run.stdout) as { id: string };
    await waitForRun(t.p, id, ['succeeded']);

    const list = await cli(['runs', '--function', 'pr-review'], { env });
    assert.match(list.stdout, /^RUN +FUNCTION +STATUS +CREATED +TOOK$/m);
    assert.match(list.stdout, new RegExp(`^${id}  pr-review +succeeded `, 'm'));
    const listJson = JSON.parse((await cli(['runs', '--json', '--limit', '5'], { env })).stdout) as Array<{ id: string }>;
    assert.ok(listJson.some((r) => r.id === id));

    const shown = await cli(['runs', id], { env });
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^ +1 {2}review +llm +succeeded +attempt 1 .* 11\+7 tokens \(stub-model\)$/m);
    assert.match(shown.stdout, /^run succeeded: 3 steps, 3 attempts/m);
    const shownJson = JSON.parse((await cli(['runs', id, '--json'], { env })).stdout) as { id: string; steps: unknown[] };
    assert.equal(shownJson.steps.length, 3);

    const fns = JSON.parse((await cli(['functions', '--json'], { env })).stdout) as Array<{ name: string }>;
    assert.deepEqual(fns.map((f) => f.name), ['approval', 'pr-review']);
    const keys = await cli(['keys', 'list', '--json'], { env: { DATABASE_URL: t.db.url } });
    assert.equal(keys.code, 0, keys.stderr);
    assert.ok(Array.isArray(JSON.parse(keys.stdout)));
  });

  test('runs cancel, retry and replay --from; runs ID --follow re-attaches', async () => {
    // cancel: while the review's LLM call is held.
    release = () => {};
    const started = await cli(['run', 'pr-review'], { env });
    const id = started.stdout.trim();
    await waitFor(() => t.llm?.inflight, 'the review step in its LLM call');
    const cancelled = await cli(['runs', 'cancel', id], { env });
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stderr, new RegExp(`cancelled run ${id}`));
    const held = release;
    release = null;
    held?.();
    const followed = await cli(['runs', id, '--follow'], { env });
    assert.equal(followed.code, 1, `a cancelled run exits 1: ${followed.stderr}`);
    assert.match(followed.stderr, /^run cancelled: /m);

    // retry: a cancelled run restarts from its step and, followed, succeeds.
    const retried = await cli(['runs', 'retry', id, '--follow'], { env });
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stderr, /retrying run .* from the step it stopped at/);
    assert.match(retried.stderr, /^run succeeded: /m);

    // replay --from 2 keeps steps 0 and 1, runs `post` again.
    const replayed = await cli(['runs', 'replay', id, '--from', '2', '--follow'], { env });
    assert.equal(replayed.code, 0, replayed.stderr);
    const newId = replayed.stdout.split('\n')[0];
    assert.notEqual(newId, id);
    assert.match(replayed.stderr, new RegExp(`replaying run ${id} as ${newId}, keeping its steps before 2`));
    const replay = await waitForRun(t.p, newId, ['succeeded']);
    assert.deepEqual(replay.steps.map((s) => s.name), ['fetch_diff', 'review', 'post']);
    // A finished run cannot be cancelled: the API's refusal, one line, exit 1.
    const late = await cli(['runs', 'cancel', newId], { env });
    assert.equal(late.code, 1);
    assert.match(late.stderr, /^baton runs: run_finished: run \S+ already succeeded$/m);
    const bad = await cli(['runs', 'replay', id, '--from', 'two'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from must be a whole number/);
  });

  test('baton signal delivers a payload to a waiting run', async () => {
    const run = await cli(['run', 'approval'], { env });
    const id = run.stdout.trim();
    await waitForRun(t.p, id, ['waiting']);
    const early = await cli(['signal', id, 'reject'], { env });
    assert.equal(early.code, 0, early.stderr);
    assert.match(early.stderr, new RegExp(`kept signal "reject" in the inbox of run ${id}: no step waits for it yet`));
    const sent = await cli(['signal', id, 'approve', '{"ok": true, "by": "ana"}', '--follow'], { env });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stderr, new RegExp(`delivered signal "approve" to run ${id}`));
    assert.deepEqual(JSON.parse(sent.stdout), { change: 'raise the rate limit', approved: { ok: true, by: 'ana' } });
    const late = await cli(['signal', id, 'approve'], { env });
    assert.equal(late.code, 1);
    assert.match(late.stderr, /run_finished: run \S+ is succeeded: it takes no more signals/);
  });

  test('a worker whose functions call tool servers with no URL, or that has no signing key, says so loudly at start', async (tc) => {
    const bare = Object.fromEntries(Object.entries(t.env).filter(([k]) => !/^BATON_TOOL_/.test(k)));
    const worker = spawnBaton('worker', { ...bare, BATON_FUNCTIONS_DIR: functionsDir }, 'toolless');
    tc.after(() => stopAll([worker], 'SIGTERM'));
    await worker.waitForLine(/^baton worker /, 30_000);
    const said = worker.lines.join('\n');
    assert.match(
      said,
      /^baton worker: WARNING: function pr-review calls tool servers with no URL: git \(set BATON_TOOL_GIT_URL\), review \(set BATON_TOOL_REVIEW_URL\); its tool steps will fail with tool_denied/m,
    );
    assert.match(said, /^baton worker: WARNING: no key to sign tool capability tokens \(BATON_TOOL_SIGNING_KEY\): tool calls of pr-review will be refused/m);
    assert.doesNotMatch(said, /function approval/, 'a function without tools is fine');

    // Configured: not a word.
    const configured = spawnBaton('worker', { ...t.env, BATON_FUNCTIONS_DIR: functionsDir }, 'tooled');
    tc.after(() => stopAll([configured], 'SIGTERM'));
    await configured.waitForLine(/^baton worker /, 30_000);
    assert.doesNotMatch(configured.lines.join('\n'), /WARNING/);
  });
});
