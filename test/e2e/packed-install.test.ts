/**
 * Baton as a package in someone else's project: `npm pack` (its prepack builds the
 * JavaScript and declarations), then a fresh project with one function of its own
 * installs the tarball and runs `npx baton dev --once` to success. The install is
 * served from npm's local cache, filled when this checkout was installed (the registry
 * is asked only for what the cache lacks).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { ROOT } from '../helpers/processes.ts';

const run = promisify(execFile);
// Node 22 (the checkout's `node` devDependency) first: the user's project needs Node >= 22.18.
const PATH = `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`;
// The machine's environment (its CA certificates, for one), without npm's own variables from the
// `npm test` that runs this (they would point the install elsewhere) and without Baton's.
const env: Record<string, string> = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|BATON_|DATABASE_URL$|REDIS_URL$|PORT$|NODE_TEST)/i.test(k))),
  PATH,
  npm_config_update_notifier: 'false',
};

let work: string;
let tarball: string;
let project: string;

const HELLO = `import * as v from 'valibot';
import { defineAgent, done, next } from 'baton/define';

export default defineAgent({
  name: 'hello',
  input: v.object({ who: v.string() }),
  start: 'greet',
  steps: {
    greet: async (ctx) => next('finish', { greeting: (await ctx.llm.generateText({ prompt: \`Greet \${ctx.input.who}\` })).text }),
    finish: (ctx) => done({ greeting: ctx.state.greeting }),
  },
});
`;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-pack-'));
  // Pack a copy, so the build's dist/ never lands in the checkout.
  const src = path.join(work, 'src');
  fs.mkdirSync(src);
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'bin', 'runtime', 'scripts', 'tools', 'schema']) {
    fs.cpSync(path.join(ROOT, entry), path.join(src, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: src, env, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  tarball = path.join(work, info.filename);
  console.log(`packed ${info.filename}: ${(info.size / 1024).toFixed(0)} kB, ${(info.unpackedSize / 1024 / 1024).toFixed(1)} MB unpacked, ${info.files.length} files`);
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes('bin/baton.js') && files.includes('dist/scripts/baton.js') && files.includes('dist/runtime/define.d.ts'), 'bin, JS and declarations');
  assert.ok(files.some((f) => f.startsWith('dist/schema/migrations/') && f.endsWith('.sql')), 'the migrations');
  assert.ok(!files.some((f) => /\.test\.|(^|\/)test\//.test(f)), 'no tests');
  assert.ok(!files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript sources (Node will not strip types under node_modules)');

  project = path.join(work, 'my-agents');
  fs.mkdirSync(path.join(project, 'functions/hello'), { recursive: true });
  fs.writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'my-agents', private: true, type: 'module' }, null, 2)}\n`);
  fs.writeFileSync(path.join(project, 'functions/hello/index.ts'), HELLO);
  fs.writeFileSync(path.join(project, 'functions/hello/example.json'), '{ "who": "world" }\n');
  const started = Date.now();
  await run('npm', ['install', tarball, 'valibot@^1.5.0', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project, env, timeout: 240_000 });
  console.log(`installed into a fresh project in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('npx baton in the installed project: --help, and dev --once runs its own function to success', async () => {
  const help = await run('npx', ['baton', '--help'], { cwd: project, env });
  assert.match(help.stdout, /^ {2}dev +everything in one process/m);
  const dev = await run('npx', ['baton', 'dev', '--once'], { cwd: project, env: { ...env, PORT: '0', BATON_METRICS_PORT: '0' }, timeout: 180_000 });
  console.log(dev.stdout);
  assert.match(dev.stdout, /functions +hello$/m, 'the project’s own functions/, not Baton’s');
  assert.match(dev.stdout, /database +\S+\/my-agents\/\.baton\/pgdata \(embedded PGlite\)/);
  assert.match(dev.stdout, /✓ +0 greet +llm/);
  assert.match(dev.stdout, /✓ +1 finish +compute/);
  assert.match(dev.stdout, /Run succeeded in (?:\d+ ms|\d+\.\d s|\d+ min \d+ s)/);
  assert.match(dev.stdout, /greeting: .*Greet world/);
});

test('the authoring API is importable as baton/define, with declarations a TypeScript project checks against', async () => {
  const imported = await run(process.execPath, ['--input-type=module', '-e', "const m = await import('baton/define'); console.log(Object.keys(m).sort().join(','))"], { cwd: project, env });
  assert.match(imported.stdout, /\bdefineAgent\b.*\bdone\b.*\bnext\b.*\bwait\b/);
  fs.writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'nodenext', strict: true, noEmit: true, allowImportingTsExtensions: true, skipLibCheck: true }, include: ['functions/**/*.ts'] }),
  );
  const tsc = path.join(ROOT, 'node_modules/.bin/tsc');
  await run(tsc, ['-p', project], { env });
  fs.writeFileSync(path.join(project, 'functions/hello/wrong.ts'), "import { done } from 'baton/define';\nexport const n: number = done('x').output;\n");
  await assert.rejects(run(tsc, ['-p', project], { env }), (err: { stdout: string }) => /wrong\.ts.*Type 'unknown' is not assignable to type 'number'/.test(err.stdout));
  fs.rmSync(path.join(project, 'functions/hello/wrong.ts'));
});
