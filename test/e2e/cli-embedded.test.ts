/**
 * The CLI finds the embedded mode: while `baton dev` (npm start) runs, `baton run
 * --follow`, `baton runs` and `baton keys create` on the same data directory talk to
 * it (its URL and local key are in the data directory), and never open its PGlite
 * database a second time behind its back. Once it has stopped, `baton keys` opens
 * the database itself, under the same lock.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cli, startCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/platform.ts';

let dir: string;
let dev: ReturnType<typeof startCli>;
let env: Record<string, string>;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-embedded-cli-'));
  env = { BATON_DATA_DIR: dir };
  dev = startCli(['dev', '--no-demo'], { env: { ...env, PORT: '0' }, timeoutMs: 180_000 });
  await waitFor(() => /Ready\. Ctrl-C to stop\./.test(dev.output()), 'baton dev to be ready', 90_000);
});
after(async () => {
  dev.signal('SIGINT');
  await dev.done;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('while baton dev runs, the CLI talks to it: run --follow, runs, keys create (the key works)', async () => {
  const url = /API +(http:\/\/127\.0\.0\.1:\d+)/.exec(dev.output())?.[1];
  assert.ok(url, dev.output());
  const record = JSON.parse(fs.readFileSync(path.join(dir, 'dev.json'), 'utf8')) as { pid: number; url: string };
  assert.equal(record.url, url);
  assert.equal(fs.statSync(path.join(dir, 'dev.json')).mode & 0o777, 0o600);

  // No BATON_URL, no BATON_API_KEY: found through the data directory (auth is on).
  const run = await cli(['run', 'pr-review', '--follow'], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`accepted in [\\d.]+ ms: ${url}/v1/runs/`));
  assert.match(run.stderr, /^run succeeded: 3 steps, 3 attempts, \d+ input \+ \d+ output tokens, cost \$0\.00, /m);
  const id = run.stdout.split('\n')[0];

  const runs = JSON.parse((await cli(['runs', '--json'], { env })).stdout) as Array<{ id: string; status: string }>;
  assert.deepEqual(runs.map((r) => [r.id, r.status]), [[id, 'succeeded']]);

  // keys create goes through the running process: the key is in its database and works at once.
  const created = await cli(['keys', 'create', '--tenant', 'acme'], { env });
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  const res = await fetch(`${url}/v1/runs`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200, 'the new key works against the running API');
  assert.deepEqual(await res.json(), { runs: [] }, "tenant acme sees none of tenant local's runs");
  const listed = await cli(['keys', 'list'], { env });
  assert.match(listed.stdout, /^[0-9a-f]{8} {2}acme +active/m);
  assert.match(listed.stdout, /^[0-9a-f]{8} {2}local +active/m);

  // A second baton dev on the same data directory refuses.
  const second = await cli(['dev', '--once'], { env: { ...env, PORT: '0' } });
  assert.equal(second.code, 1);
  assert.match(second.stderr, /another Baton \(pid \d+\) is using /);
});

test('after baton dev stops: its record is gone, and keys reaches the embedded database under the lock', async () => {
  dev.signal('SIGINT');
  const stopped = await dev.done;
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /Stopping… \(0 step\(s\) in flight get up to 5 s; Ctrl-C again to exit at once\)\nStopped\.\n$/);
  assert.ok(!fs.existsSync(path.join(dir, 'dev.json')), 'dev.json removed');
  assert.ok(!fs.existsSync(path.join(dir, 'lock')), 'lock released');
  const listed = await cli(['keys', 'list'], { env });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /acme +active/, 'the key created through baton dev was kept');
  assert.ok(!fs.existsSync(path.join(dir, 'lock')), 'lock released again');
});
