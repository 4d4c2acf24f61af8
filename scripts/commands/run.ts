/**
 * `baton run FUNCTION [INPUT]`: triggers a run and prints its id (stdout).
 * INPUT is a JSON string, a file path, `-` for stdin, or absent for the function's
 * example.json. --follow streams its steps until it finishes (exit 1 unless succeeded).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../runtime/config.ts';
import { createClient } from '../lib/client.ts';

function readInput(fn: string, arg: string | undefined): unknown {
  if (arg === undefined) return JSON.parse(fs.readFileSync(path.join(loadConfig().functionsDir, fn, 'example.json'), 'utf8'));
  const text = arg === '-' ? fs.readFileSync(0, 'utf8') : arg.trim().startsWith('{') || arg.trim().startsWith('[') ? arg : fs.readFileSync(arg, 'utf8');
  return JSON.parse(text);
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { follow: { type: 'boolean', short: 'f' }, 'idempotency-key': { type: 'string' } },
  });
  const [fn, inputArg] = positionals;
  if (!fn) throw new Error('usage: baton run FUNCTION [INPUT.json | JSON | -] [--follow]');
  const client = createClient();
  const started = performance.now();
  const { body } = await client.request<{ id: string; status: string }>('POST', `/v1/functions/${encodeURIComponent(fn)}/runs`, readInput(fn, inputArg));
  console.log(body.id);
  console.error(`accepted in ${(performance.now() - started).toFixed(1)} ms: ${client.base}/v1/runs/${body.id}`);
  if (!values.follow) return 0;
  let final = 'unknown';
  await client.stream(`/v1/runs/${body.id}/events`, (event, data) => {
    const d = JSON.parse(data) as Record<string, unknown>;
    if (event === 'step.completed' || event === 'step.failed') {
      console.error(`  ${event === 'step.completed' ? '✓' : '✗'} ${d.seq} ${d.name} ${d.kind ?? ''} ${d.durationMs ?? ''} ms`);
    } else if (event === 'run.waiting') console.error(`  … waiting for signal "${d.signal}"`);
    else if (event === 'run.finished') {
      final = String(d.status);
      console.error(`run ${final}`);
      console.log(JSON.stringify(d.status === 'succeeded' ? d.output : d.error, null, 2));
      return 'stop';
    }
  });
  return final === 'succeeded' ? 0 : 1;
}
