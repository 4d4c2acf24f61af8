/**
 * The benchmark suite runs: every part but the peers (which install their own packages,
 * never in a test) starts, finishes on a tiny workload (--quick) and prints its rows in
 * the table. Nothing here looks at the figures: speed is for `npm run bench`, not tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PARTS = ['floor', 'overhead', 'throughput', 'ingest', 'agents', 'long', 'startup'];

test('each bench part runs on a tiny workload and prints its rows in one table', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['bench/run.ts', ...PARTS, '--quick'], {
    cwd: ROOT,
    timeout: 180_000,
    maxBuffer: 10 * 1024 * 1024,
  });
  const rows = stdout.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| part '));
  for (const part of PARTS) assert.ok(rows.some((r) => r.startsWith(`| ${part} |`)), `a row for ${part} in:\n${stdout}`);
  assert.ok(!rows.some((r) => r.includes('did not complete')), stdout);
  assert.match(stdout, /PostgreSQL \d+/, 'the machine line names the servers');
});
