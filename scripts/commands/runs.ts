/**
 * `baton runs`: list runs, show one (or follow it), and act on it:
 *   baton runs [--status S] [--function F] [--limit N] [--json]
 *   baton runs RUN_ID [--follow] [--json]
 *   baton runs cancel|retry RUN_ID [--follow]
 *   baton runs replay RUN_ID [--from SEQ] [--follow]
 */
import { EXIT, intOption, parseCommand, usageError } from '../lib/cli.ts';
import { type ApiClient, createClient } from '../lib/client.ts';
import { follow } from '../lib/follow.ts';
import { type RunView, formatDuration, formatSummary, pricesFrom, summarize } from '../lib/summary.ts';

export const usage =
  'usage: baton runs [RUN_ID [--follow]] [--status S] [--function F] [--limit N] [--json] | baton runs cancel|retry|replay RUN_ID [--from SEQ] [--follow]';

export const help = `usage: baton runs [--status S] [--function F] [--limit N] [--json]
       baton runs RUN_ID [--follow] [--json]
       baton runs cancel RUN_ID
       baton runs retry RUN_ID [--follow]
       baton runs replay RUN_ID [--from SEQ] [--follow]

Without RUN_ID: the latest runs (newest first), filtered by --status
(queued, running, waiting, succeeded, failed, cancelled) and --function; --limit (50).
With RUN_ID: the run, its steps (attempts, durations, tokens) and its output or error;
--follow re-attaches to it and streams the rest (as baton run --follow does).

  cancel RUN_ID              cancel the run; its in-flight call is aborted
  retry RUN_ID               restart a failed or cancelled run from its failed step
  replay RUN_ID [--from SEQ] a new run with the same input; with --from, it keeps the
                             original's steps before SEQ and runs the rest again
                             (prints the new run's id)
  --json                     the API's answer as JSON

Exit: 0 ok (with --follow: the run succeeded), 1 failed, cancelled or refused, 2 usage,
3 the API could not be reached. Where requests go: see baton run --help.`;

const ACTIONS = new Set(['cancel', 'retry', 'replay']);

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      status: { type: 'string' },
      function: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      follow: { type: 'boolean', short: 'f' },
      from: { type: 'string' },
    },
    usage,
    { max: 2 },
  );
  const client = createClient();
  const tty = process.stderr.isTTY === true;
  const json = values.json ?? false;
  const [first, second] = positionals;
  if (first && ACTIONS.has(first)) {
    if (!second) throw usageError(`${first} needs a RUN_ID`, usage);
    const fromSeq = intOption(values.from, '--from', usage);
    if (fromSeq !== undefined && first !== 'replay') throw usageError('--from goes with replay', usage);
    const id = encodeURIComponent(second);
    if (first === 'cancel') {
      const { body } = await client.request<{ id: string; status: string }>('POST', `/v1/runs/${id}/cancel`);
      if (json) console.log(JSON.stringify(body));
      else console.error(`cancelled run ${body.id}`);
      return EXIT.ok;
    }
    if (first === 'retry') {
      const { body } = await client.request<{ id: string }>('POST', `/v1/runs/${id}/retry`);
      if (json && !values.follow) console.log(JSON.stringify(body));
      console.error(`retrying run ${body.id} from the step it stopped at`);
      return values.follow ? follow(client, body.id, { json, tty }) : EXIT.ok;
    }
    const { body } = await client.request<{ id: string; replayOf: string; fromSeq: number }>(
      'POST',
      `/v1/runs/${id}/replay`,
      fromSeq === undefined ? {} : { fromSeq },
    );
    if (json && !values.follow) console.log(JSON.stringify(body));
    else if (!json) console.log(body.id);
    console.error(`replaying run ${body.replayOf} as ${body.id}${body.fromSeq ? `, keeping its steps before ${body.fromSeq}` : ''}`);
    return values.follow ? follow(client, body.id, { json, tty }) : EXIT.ok;
  }
  if (second) throw usageError(`unexpected argument "${second}"`, usage);
  if (first) {
    if (values.follow) return follow(client, first, { json, tty });
    return show(client, first, json);
  }
  if (values.follow) throw usageError('--follow needs a RUN_ID', usage);
  const query = new URLSearchParams();
  for (const key of ['status', 'function', 'limit'] as const) if (values[key]) query.set(key, values[key] as string);
  const { body } = await client.request<{ runs: Array<{ id: string; function: string; status: string; createdAt: string; finishedAt: string | null }> }>(
    'GET',
    `/v1/runs${query.size ? `?${query}` : ''}`,
  );
  if (json) {
    console.log(JSON.stringify(body.runs, null, 2));
    return EXIT.ok;
  }
  if (body.runs.length === 0) console.error('no runs');
  else console.log(`${'RUN'.padEnd(36)}  ${'FUNCTION'.padEnd(16)} ${'STATUS'.padEnd(10)} ${'CREATED'.padEnd(24)} TOOK`);
  for (const r of body.runs) {
    const took = r.finishedAt ? formatDuration(new Date(r.finishedAt).getTime() - new Date(r.createdAt).getTime()) : '-';
    console.log(`${r.id}  ${r.function.padEnd(16)} ${r.status.padEnd(10)} ${r.createdAt.padEnd(24)} ${took}`);
  }
  return EXIT.ok;
}

async function show(client: ApiClient, id: string, json: boolean): Promise<number> {
  const { body } = await client.request<RunView & { error: { code?: string; message?: string } | null }>('GET', `/v1/runs/${encodeURIComponent(id)}`);
  if (json) {
    console.log(JSON.stringify(body, null, 2));
    return EXIT.ok;
  }
  console.log(`${body.id}  ${body.function}  ${body.status}  created ${body.createdAt}`);
  for (const s of body.steps) {
    const cost = typeof s.usage?.costUsd === 'number' ? ` $${s.usage.costUsd.toFixed(6)}` : '';
    const tokens = s.usage ? `  ${s.usage.inputTokens ?? 0}+${s.usage.outputTokens ?? 0} tokens (${s.usage.model})${cost}` : '';
    const took = s.durationMs === null ? '-' : formatDuration(s.durationMs);
    const name = s.branch ? `${s.name} ⋔${s.branch}` : s.name;
    console.log(`  ${String(s.seq).padStart(3)}  ${name.padEnd(16)} ${String(s.kind ?? '').padEnd(8)} ${s.status.padEnd(10)} attempt ${s.attempt}  ${took}${tokens}`);
    if (s.summary) console.log(`       ${s.summary}`);
  }
  console.log(formatSummary(summarize(body, pricesFrom())));
  console.log(JSON.stringify(body.status === 'succeeded' ? body.output : body.error, null, 2));
  return EXIT.ok;
}
