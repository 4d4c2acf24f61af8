/**
 * A copy of the project as a user has it after `git clone && npm install`, in a fresh
 * temporary directory (no .baton/, no .git), for tests that run `npm start` or README
 * blocks where relative paths (.baton/api-key, functions/…) must resolve. node_modules
 * is linked, not copied.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './processes.ts';

const ENTRIES = ['package.json', 'tsconfig.json', 'bin', 'functions', 'runtime', 'schema', 'scripts', 'tools'];

export function copyProject(prefix = 'baton-copy-'): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const entry of ENTRIES) {
    if (fs.existsSync(path.join(ROOT, entry))) fs.cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
