/**
 * `baton deploy --dry-run` is deterministic: the same input prints the same bytes,
 * and the demo's output is committed as infra/demo/<mode>.yaml, so a change to any
 * rendered object shows in review. BATON_UPDATE_SNAPSHOTS=1 rewrites them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SNAPSHOTS = path.join(ROOT, 'infra/demo');
const run = promisify(execFile);

async function dryRun(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['scripts/baton.ts', 'deploy', '--dry-run', ...args], { cwd: ROOT, timeout: 60_000 });
  return stdout;
}

for (const mode of ['knative', 'worker'] as const) {
  test(`baton deploy --dry-run --mode ${mode} matches its snapshot, byte for byte, every time`, async () => {
    const [first, second] = await Promise.all([dryRun('--mode', mode), dryRun('--mode', mode)]);
    assert.equal(first, second, 'two runs print the same bytes');
    const file = path.join(SNAPSHOTS, `${mode}.yaml`);
    if (process.env.BATON_UPDATE_SNAPSHOTS === '1') fs.writeFileSync(file, first);
    assert.ok(fs.existsSync(file), `${file} exists (BATON_UPDATE_SNAPSHOTS=1 writes it)`);
    assert.equal(first, fs.readFileSync(file, 'utf8'), `output differs from ${path.relative(ROOT, file)}; review, then BATON_UPDATE_SNAPSHOTS=1`);
  });
}

test('-o json prints the same objects as one List', async () => {
  const list = JSON.parse(await dryRun('--mode', 'knative', '-o', 'json')) as { kind: string; items: Array<{ kind: string }> };
  assert.equal(list.kind, 'List');
  const yamlKinds = (await dryRun('--mode', 'knative')).match(/^kind: .+$/gm)!.map((l) => l.slice(6));
  assert.deepEqual(list.items.map((i) => i.kind), yamlKinds);
});
