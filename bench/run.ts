/**
 * The benchmark suite (bench/README.md). `npm run bench` runs every part and prints one
 * table; `npm run bench:<part>` runs one. The physical floor is measured first in every
 * run, so each figure is printed beside its ratio to the floor of the same run.
 *
 *   node bench/run.ts [PART…|all] [--quick] [--rounds N] [--json FILE]
 *
 * Parts: floor, overhead, throughput, peers, ingest, agents, long, startup. Progress
 * goes to stderr; stdout holds only the table (markdown, ready for bench/README.md).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createClient } from 'redis';
import { SERVER_URL } from '../test/helpers/db.ts';
import { REDIS_URL } from '../test/helpers/redis.ts';
import type { Part } from './lib/part.ts';
import { type Figure, machine, progress, renderTable } from './lib/report.ts';
import { floorFigures, measureFloor } from './parts/floor.ts';

const PARTS: Record<string, () => Promise<Part>> = {
  overhead: async () => (await import('./parts/overhead.ts')).overheadPart,
  throughput: async () => (await import('./parts/throughput.ts')).throughputPart,
  peers: async () => (await import('./parts/peers.ts')).peersPart,
  ingest: async () => (await import('./parts/ingest.ts')).ingestPart,
  agents: async () => (await import('./parts/agents.ts')).agentsPart,
  long: async () => (await import('./parts/long.ts')).longPart,
  startup: async () => (await import('./parts/startup.ts')).startupPart,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { quick: { type: 'boolean', default: false }, rounds: { type: 'string' }, json: { type: 'string' } },
});
const wanted = positionals.length === 0 || positionals.includes('all') ? ['floor', ...Object.keys(PARTS)] : positionals;
for (const name of wanted) {
  if (name !== 'floor' && !PARTS[name]) {
    console.error(`unknown part "${name}"; parts: floor, ${Object.keys(PARTS).join(', ')}`);
    process.exit(2);
  }
}
const rounds = Math.max(1, Number(values.rounds ?? (values.quick ? 1 : 3)));

async function versions(): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: SERVER_URL });
  await client.connect();
  const { rows } = await client.query<{ server_version: string }>('show server_version');
  await client.end();
  const redis = await createClient({ url: REDIS_URL }).connect();
  const info = await redis.info('server');
  await redis.close();
  return { PostgreSQL: rows[0].server_version.split(' ')[0], Redis: /redis_version:(\S+)/.exec(info)?.[1] ?? '?' };
}

const started = Date.now();
const figures: Figure[] = [];
const floorSize = values.quick ? { sequential: 20, concurrent: 100 } : { sequential: 500, concurrent: 5000 };
progress('floor: measuring');
const floor = await measureFloor(floorSize);
figures.push(...floorFigures(floor));
let failed = false;
for (const name of wanted.filter((n) => n !== 'floor')) {
  const part = await PARTS[name]();
  progress(`${name}: ${part.about}`);
  const t0 = Date.now();
  try {
    figures.push(...(await part.run({ floor, quick: values.quick, rounds })));
  } catch (err) {
    failed = true;
    progress(`${name} FAILED: ${(err as Error).stack ?? err}${(err as Error).cause ? `\ncause: ${String((err as Error).cause)}` : ''}`);
    figures.push({ part: name, label: 'did not complete (see stderr)', value: Number.NaN, unit: 'ms', note: (err as Error).message.slice(0, 120) });
  }
  progress(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
if (wanted.length > 2) {
  // The floor again at the end: how far the machine drifted while the suite ran.
  const again = await measureFloor(floorSize);
  figures.push({
    part: 'floor',
    label: 'the floor again, at the end of the run (drift)',
    value: again.seqMs,
    unit: 'ms',
    vsFloor: 'time',
    note: `${Math.round(again.c10PerSec).toLocaleString('en-US')} steps/s at 10 at once`,
  });
}

console.log(`\n${machine(await versions())} · ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
console.log(renderTable(figures, floor));
if (values.json) fs.writeFileSync(values.json, JSON.stringify({ at: new Date().toISOString(), floor, figures }, null, 2));
process.exit(failed ? 1 : 0);
