/** `baton runs [RUN_ID] [--status S] [--function F] [--limit N] [--json]`: lists runs, or shows one with its steps. */
import { parseArgs } from 'node:util';
import { createClient } from '../lib/client.ts';

interface RunRow {
  id: string;
  function: string;
  status: string;
  nextStep: string | null;
  createdAt: string;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { status: { type: 'string' }, function: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  });
  const client = createClient();
  if (positionals[0]) {
    const { body } = await client.request<Record<string, unknown> & { steps: Array<Record<string, unknown>> }>('GET', `/v1/runs/${encodeURIComponent(positionals[0])}`);
    if (values.json) {
      console.log(JSON.stringify(body, null, 2));
      return 0;
    }
    console.log(`${body.id}  ${body.function}  ${body.status}`);
    for (const s of body.steps) {
      console.log(`  ${String(s.seq).padStart(3)}  ${String(s.name).padEnd(16)} ${String(s.kind ?? '').padEnd(8)} ${String(s.status).padEnd(10)} attempt ${s.attempt}  ${s.durationMs ?? '-'} ms`);
      // Earlier attempts that failed, with why (the step row shows only the latest).
      const attempts = (s.attempts ?? []) as Array<{ attempt: number; status: string; error?: { code?: string; message?: string } | null }>;
      for (const a of attempts.filter((x) => x.status === 'failed' && x.attempt !== s.attempt)) {
        console.log(`       attempt ${a.attempt} failed: ${a.error?.code ?? '?'}: ${a.error?.message ?? ''}`);
      }
    }
    console.log(JSON.stringify(body.status === 'succeeded' ? body.output : body.error, null, 2));
    return 0;
  }
  const query = new URLSearchParams();
  for (const key of ['status', 'function', 'limit'] as const) if (values[key]) query.set(key, values[key] as string);
  const { body } = await client.request<{ runs: RunRow[] }>('GET', `/v1/runs?${query}`);
  if (values.json) console.log(JSON.stringify(body.runs, null, 2));
  else for (const r of body.runs) console.log(`${r.id}  ${r.function.padEnd(16)} ${r.status.padEnd(10)} ${r.createdAt}`);
  return 0;
}
