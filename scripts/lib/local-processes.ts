/**
 * How Baton processes on one machine find each other: through the data directory
 * (BATON_DATA_DIR, default .baton/). Each long-running local process leaves a small
 * JSON record there while it runs and removes it when it stops:
 *
 *   dev.json    `baton dev` (npm start): its API's URL, and the loopback admin
 *               endpoint (with a random token) through which `baton keys` reaches
 *               its embedded database — PGlite admits one process, so nothing else
 *               may open it while `baton dev` runs;
 *   tools.json  `baton tools`: the URLs of the demo's tool servers, for workers.
 *
 * A record whose process is gone is ignored. Files are mode 0600: the admin token is
 * as good as the database.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DevRecord {
  pid: number;
  url: string;
  adminUrl: string;
  adminToken: string;
}

export interface ToolsRecord {
  pid: number;
  urls: Record<string, string>;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes `<dir>/<name>` for this process; the returned function removes it (only if still ours). */
export function writeRecord(dir: string, name: 'dev.json' | 'tools.json', record: DevRecord | ToolsRecord): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  const tmp = `${file}.${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  fs.renameSync(tmp, file);
  return () => {
    if (readRaw(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}

function readRaw(file: string): { pid?: unknown } | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: unknown };
  } catch {
    return null;
  }
}

function readLive<T extends { pid: number }>(file: string): T | null {
  const raw = readRaw(file);
  return raw && typeof raw.pid === 'number' && isAlive(raw.pid) ? (raw as T) : null;
}

/** The running `baton dev` of this data directory, if any. */
export function readDevRecord(dir: string): DevRecord | null {
  return readLive<DevRecord>(path.join(dir, 'dev.json'));
}

/** The running `baton tools` of this data directory, if any. */
export function readToolsRecord(dir: string): ToolsRecord | null {
  return readLive<ToolsRecord>(path.join(dir, 'tools.json'));
}
