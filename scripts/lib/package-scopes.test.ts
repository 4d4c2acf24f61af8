import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createScopeTypes } from './package-scopes.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

test("a scope's type comes from the nearest package.json; one without a type says nothing", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-scopes-'));
  try {
    const write = (rel: string, json: object) => {
      fs.mkdirSync(path.join(dir, rel), { recursive: true });
      fs.writeFileSync(path.join(dir, rel, 'package.json'), JSON.stringify(json));
    };
    write('esm', { type: 'module' });
    write('esm/cjs', { type: 'commonjs' });
    write('esm/untyped', { name: 'x' });
    fs.mkdirSync(path.join(dir, 'esm/lib/deep'), { recursive: true });
    const typeOf = createScopeTypes();
    assert.equal(typeOf(path.join(dir, 'esm/lib/deep')), 'module');
    assert.equal(typeOf(path.join(dir, 'esm/cjs')), 'commonjs');
    // Node decides such a file by its syntax: the hook leaves it to Node.
    assert.equal(typeOf(path.join(dir, 'esm/untyped')), null);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Every module a child process resolves while it imports the database layer and the API's packages, with its format. */
async function resolvedModules(fast: boolean): Promise<{ modules: string[]; byHook: number }> {
  const code = `
    import module from 'node:module';
    const scopes = await import(${JSON.stringify(path.join(ROOT, 'scripts/lib/package-scopes.ts'))});
    ${fast ? 'scopes.resolvePackageFilesFast();' : ''}
    const seen = new Set();
    // Registered last, so it runs first and sees what the chain (the fast hook or Node) answers.
    module.registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.add(r.url + ' ' + r.format); return r; } });
    await import(${JSON.stringify(path.join(ROOT, 'runtime/db/connect.ts'))});
    await import('hono');
    await import('@modelcontextprotocol/sdk/client/index.js');
    console.log(JSON.stringify({ modules: [...seen].sort(), byHook: scopes.fastResolutions() }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as { modules: string[]; byHook: number };
}

test('the fast resolution finds exactly the modules and formats Node finds', async () => {
  const [node, fast] = await Promise.all([resolvedModules(false), resolvedModules(true)]);
  const drizzle = node.modules.filter((m) => m.includes('/node_modules/drizzle-orm/'));
  assert.ok(drizzle.length > 100, `drizzle-orm's files resolved (${drizzle.length})`);
  assert.ok(drizzle.every((m) => m.endsWith(' module')));
  assert.deepEqual(fast.modules, node.modules);
  assert.equal(node.byHook, 0);
  assert.ok(fast.byHook >= drizzle.length, `the hook resolved ${fast.byHook} imports itself`);
});
