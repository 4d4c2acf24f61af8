/**
 * The runtime image carries only what runs. Its install is `npm ci --omit=dev
 * --omit=optional` (see the Dockerfile): no embedded database, no Kubernetes models,
 * no schema validation or YAML, no TypeScript. This test makes that install in a
 * temporary directory, copies the code as the image does, and runs the roles there
 * against real PostgreSQL and Redis: migrate, api and worker take a run to success;
 * the verbs that need an optional package say which, in one line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { cli } from '../helpers/cli.ts';
import { type TestPlatform, startTestPlatform, waitForRun } from '../helpers/platform.ts';
import { type BatonProcess, ROOT, spawnBaton, stopAll } from '../helpers/processes.ts';

const run = promisify(execFile);

let dir: string;
let t: TestPlatform;

/** Bytes of every file under `dir` (what `du -sb` counts, less directory entries). */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-prod-'));
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.copyFileSync(path.join(ROOT, 'package-lock.json'), path.join(dir, 'package-lock.json'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))) as Record<string, string>;
  await run('npm', ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: dir,
    env,
    timeout: 240_000,
  });
  console.log(`production node_modules: ${(bytesUnder(path.join(dir, 'node_modules')) / 1024 / 1024).toFixed(1)} MB`);
  for (const entry of ['runtime', 'schema', 'functions', 'tools', 'scripts']) fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  t = await startTestPlatform({ worker: false });
});
after(async () => {
  await t?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the production install leaves out the embedded database, deploy-only packages and unused ones', () => {
  // (ajv itself stays: the MCP SDK validates tool schemas with it.)
  for (const gone of ['@electric-sql/pglite', 'kubernetes-models', 'ajv-draft-04', 'yaml', 'typescript', '@types/node', '@hono/valibot-validator', 'pino-pretty']) {
    assert.ok(!fs.existsSync(path.join(dir, 'node_modules', gone)), `${gone} is not installed`);
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  assert.ok(!('@hono/valibot-validator' in pkg.dependencies), 'an unused dependency was dropped');
});

test('migrate, api and worker run from it and take a run to success', async (tc) => {
  const migrated = await cli(['migrate'], { env: { DATABASE_URL: t.db.url }, cwd: dir, script: path.join(dir, 'scripts/baton.ts') });
  assert.equal(migrated.code, 0, migrated.stderr);
  const procs: BatonProcess[] = [];
  tc.after(() => stopAll(procs, 'SIGTERM'));
  const api = spawnBaton('api', { ...t.env, BATON_LOG_LEVEL: 'info' }, 'prod-api', dir);
  const worker = spawnBaton('worker', t.env, 'prod-worker', dir);
  procs.push(api, worker);
  const url = /listening on (\S+)/.exec(await api.waitForLine(/baton api listening on /, 30_000))?.[1];
  await worker.waitForLine(/^baton worker /, 30_000);
  const res = await fetch(`${url}/v1/functions/pr-review/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: fs.readFileSync(path.join(ROOT, 'functions/pr-review/example.json')),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  const done = await waitForRun(t.p, id, ['succeeded', 'failed'], 30_000);
  assert.equal(done.run.status, 'succeeded', JSON.stringify(done.run.error));
  // Its logs stay JSON (no terminal here; pino-pretty is not even installed).
  assert.ok(api.lines.some((l) => l.startsWith('{"level":')), api.lines.join('\n'));
});

test('verbs that need an optional package say which, in one line; their --help still works', async () => {
  const script = path.join(dir, 'scripts/baton.ts');
  const dev = await cli(['dev', '--once'], { cwd: dir, script, env: { PORT: '0' } });
  assert.equal(dev.code, 1);
  assert.match(dev.stderr, /^baton dev: the embedded database needs the optional package @electric-sql\/pglite \(npm install @electric-sql\/pglite\), or set DATABASE_URL$/m);
  fs.copyFileSync(path.join(ROOT, 'baton.config.ts'), path.join(dir, 'baton.config.ts'));
  const deploy = await cli(['deploy', '--dry-run'], { cwd: dir, script });
  assert.equal(deploy.code, 1);
  assert.match(deploy.stderr, /^baton deploy: this install lacks the package "(yaml|ajv-draft-04)" \(an optional dependency, left out of production images\): npm install \S+$/m);
  const help = await cli(['deploy', '--help'], { cwd: dir, script });
  assert.equal(help.code, 0, help.stderr);
});
