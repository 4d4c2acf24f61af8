import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadPolicy, policyProblem } from './policy.ts';

test('BATON_TOOL_POLICY is inline JSON or a file; unset is null; a bad one stops the server at start', () => {
  assert.equal(loadPolicy(undefined), null);
  assert.equal(loadPolicy('  '), null);
  const inline = loadPolicy('{"tenants":{"acme":{"repos":["acme/*"]}}}');
  assert.deepEqual(JSON.parse(JSON.stringify(inline)), { tenants: { acme: { repos: ['acme/*'] } } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-policy-'));
  try {
    const file = path.join(dir, 'policy.json');
    fs.writeFileSync(file, '{"tenants":{"ops":{"repos":["*/*"]}}}');
    assert.ok(loadPolicy(file)?.tenants.ops);
    assert.throws(() => loadPolicy(path.join(dir, 'missing.json')), /cannot read .*missing\.json: ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const bad of ['{', '{"tenants":[]}', '{"acme":{}}', '{"tenants":{"acme":{"repos":"acme/*"}}}', '{"tenants":{"acme":{"repos":["acme"]}}}', '{"tenants":{"acme":null}}']) {
    assert.throws(() => loadPolicy(bad), /BATON_TOOL_POLICY/, bad);
  }
});

test('patterns: * stays within a segment, names compare case-insensitively, regex characters are literal', () => {
  const policy = loadPolicy('{"tenants":{"acme":{"repos":["acme/*","shared/docs","a.b/c+d"]},"empty":{}}}')!;
  const ok = (tenant: string, repo: string) => policyProblem(policy, tenant, { repos: [repo] }) === null;
  assert.ok(ok('acme', 'acme/shop'));
  assert.ok(ok('acme', 'ACME/Shop'));
  assert.ok(ok('acme', 'shared/docs'));
  assert.ok(ok('acme', 'a.b/c+d'));
  assert.ok(!ok('acme', 'axb/c+d'), 'a dot is a dot');
  assert.ok(!ok('acme', 'acme-evil/shop'));
  assert.ok(!ok('acme', 'shared/docs-private'));
  assert.ok(!ok('acme', 'victim/secrets'));
  assert.ok(!ok('empty', 'acme/shop'), 'no repos: nothing');
  assert.match(policyProblem(policy, 'constructor', { repos: ['acme/shop'] }) ?? '', /tenant "constructor" has no entry/);
  assert.match(policyProblem(policy, '__proto__', { repos: ['acme/shop'] }) ?? '', /tenant "__proto__" has no entry/);
  assert.match(policyProblem(policy, 'acme', { repos: 'all' }) ?? '', /may not touch every repository/);
});
