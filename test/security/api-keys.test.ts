/**
 * API keys from the command line, as scripts use them: `baton keys create` prints
 * the key alone on stdout and stores only its hash; `baton keys revoke` ends it; the
 * embedded mode makes a local key (or says loudly that auth is off).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { createApi } from '../../runtime/api/app.ts';
import { apiKeys } from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform } from '../helpers/platform.ts';
import { spawnNode } from '../helpers/spawn.ts';

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, worker: false, env: { BATON_AUTH: 'on' } });
});
after(() => t.close());

async function baton(args: string[], env: Record<string, string> = {}) {
  const child = spawnNode(['scripts/baton.ts', ...args], { DATABASE_URL: t.db.url, BATON_DATA_DIR: t.config.dataDir, ...env });
  const code = await new Promise<number | null>((resolve) => child.process.once('exit', (c) => resolve(c)));
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

test('`baton keys create` prints the key alone on stdout, stores only its hash, and the key works until revoked', async () => {
  const created = await baton(['keys', 'create', '--tenant', 'acme', '--name', 'ci']);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^bk_[0-9a-f]{8}_[A-Za-z0-9_-]{32}\n$/, 'the key and a newline, nothing else');
  assert.match(created.stderr, /created key [0-9a-f]{8} for tenant "acme"/);
  const key = created.stdout.trim();
  const keyId = key.split('_')[1];

  // Only the SHA-256 is kept: no column of the table holds the key or its secret.
  const [row] = await t.p.db.select().from(apiKeys).where(sql`${apiKeys.id} = ${keyId}`);
  assert.equal(row.hash, crypto.createHash('sha256').update(key).digest('hex'));
  assert.equal(row.tenant, 'acme');
  const secret = key.split('_').slice(2).join('_');
  assert.ok(!JSON.stringify(row).includes(secret));

  const api = createApi(t.p);
  const ok = await api.request('/v1/runs', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(ok.status, 200);

  const listed = await baton(['keys', 'list']);
  assert.match(listed.stdout, new RegExp(`${keyId}\\s+acme\\s+active`));
  assert.ok(!listed.stdout.includes(secret) && !listed.stdout.includes(row.hash), 'listing shows neither key nor hash');

  const revoked = await baton(['keys', 'revoke', keyId]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout, '');
  // A fresh API process (no cache) refuses it at once; a running one within its 10 s cache.
  const after = await createApi(t.p).request('/v1/runs', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(after.status, 401);
});

test('`baton keys create` refuses a missing or odd tenant, with nothing on stdout', async () => {
  for (const args of [['keys', 'create'], ['keys', 'create', '--tenant', 'a b'], ['keys', 'create', '--tenant', "x'; drop table runs;--"]]) {
    const r = await baton(args);
    assert.equal(r.code, 2, args.join(' ')); // a usage error
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /--tenant NAME is required/);
  }
});

test('embedded mode prints a local key, or a warning when BATON_AUTH=off', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-dev-'));
  try {
    const env = { DATABASE_URL: t.db.url, BATON_DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1' };
    const on = await baton(['dev', '--once', '--no-demo'], env);
    assert.equal(on.code, 0, on.stderr);
    const key = /API key\s+(bk_\S+)/.exec(on.stdout)?.[1];
    assert.ok(key, on.stdout);
    assert.equal(fs.readFileSync(path.join(dir, 'api-key'), 'utf8').trim(), key);
    assert.equal(fs.statSync(path.join(dir, 'api-key')).mode & 0o777, 0o600);
    assert.doesNotMatch(on.stdout, /BATON_AUTH=off/);

    const off = await baton(['dev', '--once', '--no-demo'], { ...env, BATON_AUTH: 'off' });
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /warning\s+BATON_AUTH=off: the API accepts requests without an API key/);
    assert.doesNotMatch(off.stdout, /API key\s+bk_/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
