/**
 * Part 5, ingestion: `POST /v1/functions/chain/runs` on `baton api` (its own process,
 * default settings, no worker) under autocannon at 50 and then 200 connections for
 * 10 s each: requests/s (median of the per-second counts), p50/p99 latency, errors.
 * Beside it, the same load on a bare Hono route that answers 202 without touching
 * anything (bench/lib/bare-api.ts): the ceiling of this machine and HTTP stack.
 */
import path from 'node:path';
import autocannon from 'autocannon';
import { spawnNode } from '../../test/helpers/spawn.ts';
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { startStack } from '../lib/stack.ts';

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(url: string, connections: number, seconds: number): Promise<Load> {
  const r = await autocannon({
    url: `${url}/v1/functions/chain/runs`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ steps: 10 }),
    connections,
    duration: seconds,
  });
  return { rps: r.requests.p50, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx };
}

export const ingestPart: Part = {
  name: 'ingest',
  about: 'POST /v1/functions/chain/runs under autocannon at 50 and 200 connections, beside a bare Hono route',
  async run(ctx) {
    const seconds = ctx.quick ? 1 : 10;
    const bare = spawnNode([path.join(import.meta.dirname, '../lib/bare-api.ts')], {});
    const stack = await startStack({ workers: 0 });
    const figures: Figure[] = [];
    try {
      const [, bareUrl] = await bare.waitFor(/bare api listening on (\S+)/);
      const apiUrl = stack.api?.url as string;
      if (!ctx.quick) {
        // Warm both up alike, at load, before measuring: a server runs for hours, and a 1 s
        // warm-up left Baton's much larger code half in V8's baseline tier through the first
        // measured seconds (about 20% more CPU per request), the bare route's few lines not.
        await load(apiUrl, 50, 3);
        await load(bareUrl, 50, 3);
      }
      for (const connections of [50, 200]) {
        const ceiling = await load(bareUrl, connections, seconds);
        const baton = await load(apiUrl, connections, seconds);
        const pct = Math.round((100 * baton.rps) / ceiling.rps);
        figures.push(
          { part: 'ingest', label: `POST → 202, ${connections} connections: requests/s`, value: baton.rps, unit: 'req/s', vsFloor: 'rate', note: `bare Hono route ${Math.round(ceiling.rps).toLocaleString('en-US')} req/s: ${pct}% of it; errors ${baton.errors}` },
          { part: 'ingest', label: `POST → 202, ${connections} connections: p50 latency`, value: baton.p50, unit: 'ms', vsFloor: 'time', note: `bare ${ceiling.p50} ms` },
          { part: 'ingest', label: `POST → 202, ${connections} connections: p99 latency`, value: baton.p99, unit: 'ms', vsFloor: 'time', note: `bare ${ceiling.p99} ms` },
        );
        if (baton.errors > 0 || ceiling.errors > 0) throw new Error(`errors under load: baton ${baton.errors}, bare ${ceiling.errors}`);
      }
      return figures;
    } finally {
      await bare.stop();
      await stack.close();
    }
  },
};
