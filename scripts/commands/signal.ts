/** `baton signal RUN_ID NAME [JSON | FILE | -]`: delivers a signal to a run (its waiting step, or its inbox). */
import fs from 'node:fs';
import { EXIT, parseCommand, parseJsonArg } from '../lib/cli.ts';
import { createClient } from '../lib/client.ts';
import { follow } from '../lib/follow.ts';

export const usage = 'usage: baton signal RUN_ID NAME [JSON | FILE | -] [--follow] [--json]';

export const help = `${usage}

Delivers signal NAME to a run, with a JSON payload (default null) that the step it
resumes sees as ctx.signal.payload:
  baton signal 0190… approve '{"ok":true}'
A run that waits for NAME (a step returned wait(NAME)) resumes at once. A live run that
does not wait for it yet keeps it in its inbox: the first step that returns wait(NAME)
takes it, in arrival order. A finished run refuses it (exit 1).

  --follow   then follow the run to its end (as baton run --follow)
  --json     print the API's answer as JSON`;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, { follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } }, usage, { min: 2, max: 3 });
  const [id, name, payloadArg] = positionals;
  const payload =
    payloadArg === undefined
      ? null
      : payloadArg === '-'
        ? parseJsonArg(fs.readFileSync(0, 'utf8'), 'the payload on stdin')
        : !fs.existsSync(payloadArg) || /^\s*[[{"]/.test(payloadArg)
          ? parseJsonArg(payloadArg, 'the payload')
          : parseJsonArg(fs.readFileSync(payloadArg, 'utf8'), payloadArg);
  const client = createClient();
  const { body } = await client.request<{ id: string; signal: string; buffered: boolean }>(
    'POST',
    `/v1/runs/${encodeURIComponent(id)}/signals/${encodeURIComponent(name)}`,
    payload,
  );
  if (values.json && !values.follow) console.log(JSON.stringify(body));
  console.error(
    body.buffered
      ? `kept signal "${body.signal}" in the inbox of run ${body.id}: no step waits for it yet`
      : `delivered signal "${body.signal}" to run ${body.id}`,
  );
  return values.follow ? follow(client, body.id, { json: values.json ?? false, tty: process.stderr.isTTY === true }) : EXIT.ok;
}
