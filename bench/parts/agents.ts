/**
 * Part 6, agents per pod: 1,000 runs of `llm-steps` (three LLM calls each) POSTed at
 * once, run by ONE `baton worker` process with default settings, against the
 * OpenAI-compatible stub from the tests answering after 2 s. Wall time (first POST →
 * last commit) against the ideal (3 × 2 s, every run waiting on its model at once),
 * the worker's peak memory (its process tree) and the PostgreSQL connections in use
 * at the peak: the worker's own (from /proc) and the database's total
 * (pg_stat_activity, which also counts the API's and this bench's).
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { startLlmStub } from '../../test/helpers/llm-stub.ts';
import type { Part } from '../lib/part.ts';
import { connectionsTo, rssOfTreeMb } from '../lib/procfs.ts';
import type { Figure } from '../lib/report.ts';
import { startStack, submitRuns, waitForRuns } from '../lib/stack.ts';
import { nowMs } from '../lib/stats.ts';

const LLM_STEPS = 3;

export const agentsPart: Part = {
  name: 'agents',
  about: '1,000 runs × 3 LLM steps (stub at 2 s), one worker process: wall time vs ideal, peak RSS, peak PG connections',
  async run(ctx) {
    const runs = ctx.quick ? 20 : 1000;
    const latencyMs = ctx.quick ? 200 : 2000;
    const llm = await startLlmStub({ delayMs: latencyMs, reply: () => 'ok' });
    const stack = await startStack({
      workers: 1,
      env: {
        BATON_FUNCTIONS_DIR: path.resolve(import.meta.dirname, '../functions'),
        OPENAI_API_KEY: 'bench-key',
        OPENAI_BASE_URL: llm.url,
        BATON_MODEL: 'stub-model',
      },
    });
    const peak = { rss: 0, own: 0, total: 0 };
    let sampling = true;
    try {
      const worker = stack.workers[0];
      const pgPort = Number(new URL(stack.env.DATABASE_URL).port || 5432);
      const sampler = (async () => {
        for (let i = 0; sampling; i++) {
          peak.rss = Math.max(peak.rss, rssOfTreeMb(worker.pid));
          // Once a second: it reads a link per open socket (a thousand model connections) and the whole
          // TCP table, CPU the worker would otherwise have (~1.7 s of the run at every 200 ms).
          if (i % 5 === 0) peak.own = Math.max(peak.own, connectionsTo(worker.pid, pgPort));
          const [r] = await query<{ n: number }>(stack.db, sql`select count(*)::int as n from pg_stat_activity where datname = current_database()`);
          peak.total = Math.max(peak.total, r.n);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      const t0 = nowMs();
      const ids = await submitRuns(stack.api?.url as string, 'llm-steps', { topic: 'durable agents' }, runs);
      const end = await waitForRuns(stack.db, ids, 900_000, 200);
      sampling = false;
      await sampler;
      const wallS = (end - t0) / 1000;
      const idealS = (LLM_STEPS * latencyMs) / 1000;
      const figures: Figure[] = [
        { part: 'agents', label: `${runs} runs × ${LLM_STEPS} LLM steps (${latencyMs / 1000} s each), 1 worker: wall time`, value: wallS, unit: 's', note: `${(wallS / idealS).toFixed(1)}× the ideal ${idealS} s; ${llm.calls.length} LLM calls` },
        { part: 'agents', label: 'peak RSS of the worker process tree', value: peak.rss, unit: 'MB' },
        { part: 'agents', label: "peak PostgreSQL connections: the worker's / the database's total", value: peak.own, unit: 'conns', note: `database total ${peak.total} (API and bench included)` },
      ];
      return figures;
    } finally {
      sampling = false;
      await stack.close();
      await llm.close();
    }
  },
};
