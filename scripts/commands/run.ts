/**
 * `baton run FUNCTION [INPUT]`: triggers a run and prints its id (stdout).
 * INPUT is a JSON text, a file, `-` for stdin, or absent for the function's
 * example.json. --follow streams its steps until it finishes (scripts/lib/follow.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../runtime/config.ts';
import { CliError, EXIT, parseCommand, parseJsonArg, usageError } from '../lib/cli.ts';
import { type ApiClient, createClient } from '../lib/client.ts';
import { follow } from '../lib/follow.ts';

export const usage = 'usage: baton run FUNCTION [INPUT.json | JSON | -] [--follow] [--idempotency-key KEY] [--json]';

export const help = `${usage}

Triggers a run of FUNCTION and prints its id on stdout. The input is a JSON text
('{"repo":"acme/shop","pr":7}'), a file, - for stdin, or, when absent, the function's
functions/FUNCTION/example.json.

  --follow, -f             stream the run: each step as it completes (on a terminal, the
                           step in progress with its elapsed time and the LLM's tokens as
                           they stream), then a summary (steps, attempts, tokens, cost
                           when known, wall time) and the output. Survives an API restart.
  --idempotency-key KEY    the same key (and input) returns the same run, never a second one
  --json                   print the API's answer as JSON; with --follow, every event as a
                           JSON line, then {"event":"summary",…}

It sends requests to BATON_URL with BATON_API_KEY; without BATON_URL, to the \`npm start\`
(baton dev) running on this data directory, with its local key; else to
http://127.0.0.1:8080. An API that does not answer yet is waited for (BATON_API_WAIT_S,
15 s). Exit: 0 accepted (with --follow: succeeded), 1 failed or cancelled, 2 usage,
3 the API could not be reached.`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { follow: { type: 'boolean', short: 'f' }, 'idempotency-key': { type: 'string' }, json: { type: 'boolean' } },
    usage,
    { min: 1, max: 2 },
  );
  const [fn, inputArg] = positionals;
  const client = createClient();
  const input = await readInput(client, fn, inputArg);
  const started = performance.now();
  const headers = values['idempotency-key'] ? { 'idempotency-key': values['idempotency-key'] } : undefined;
  const { body } = await client
    .request<{ id: string; status: string }>('POST', `/v1/functions/${encodeURIComponent(fn)}/runs`, input, headers)
    .catch((err: unknown) => explainUnknownFunction(client, err));
  if (values.json && !values.follow) console.log(JSON.stringify(body));
  else if (!values.json) console.log(body.id);
  console.error(`accepted in ${(performance.now() - started).toFixed(1)} ms: ${client.base}/v1/runs/${body.id}`);
  if (!values.follow) return EXIT.ok;
  return follow(client, body.id, { json: values.json ?? false, tty: process.stderr.isTTY === true });
}

async function readInput(client: ApiClient, fn: string, arg: string | undefined): Promise<unknown> {
  if (arg === undefined) {
    const example = path.join(loadConfig().functionsDir, fn, 'example.json');
    if (fs.existsSync(example)) return parseJsonArg(fs.readFileSync(example, 'utf8'), example);
    // Not here: ask the API, which says whether the function exists at all.
    await client.request('GET', `/v1/functions/${encodeURIComponent(fn)}`).catch((err: unknown) => explainUnknownFunction(client, err));
    throw usageError(`give ${fn} an input (there is no ${path.relative('.', example)} here)`, usage);
  }
  if (arg === '-') return parseJsonArg(fs.readFileSync(0, 'utf8'), 'the input on stdin');
  const text = arg.trim();
  if (/^[[{"]/.test(text) || /^(-?\d|true$|false$|null$)/.test(text)) return parseJsonArg(arg, 'the input');
  if (!fs.existsSync(arg)) throw usageError(`no file "${arg}" (INPUT is a JSON text, a file, or - for stdin)`, usage);
  return parseJsonArg(fs.readFileSync(arg, 'utf8'), arg);
}

/** function_not_found: add which functions the API does serve. */
async function explainUnknownFunction(client: ApiClient, err: unknown): Promise<never> {
  if (!(err instanceof CliError) || !err.message.startsWith('function_not_found')) throw err;
  const known = await client
    .request<{ functions: Array<{ name: string }> }>('GET', '/v1/functions')
    .then(({ body }) => body.functions.map((f) => f.name))
    .catch(() => []);
  throw new CliError(`${err.message}${known.length ? ` (the API serves: ${known.join(', ')})` : ''}`);
}
