/** `baton functions [--json]`: the functions the API serves, with their steps and tool scopes. */
import { parseCommand } from '../lib/cli.ts';
import { createClient } from '../lib/client.ts';

export const usage = 'usage: baton functions [--json]';

export const help = `${usage}

Lists the functions the API serves: their steps, the tools they may call, and a
description. --json adds each function's input schema (JSON Schema).`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { json: { type: 'boolean' } }, usage, { max: 0 });
  const { body } = await createClient().request<{ functions: Array<{ name: string; description: string | null; steps: string[]; tools: Record<string, string[]> }> }>(
    'GET',
    '/v1/functions',
  );
  if (values.json) console.log(JSON.stringify(body.functions, null, 2));
  else
    for (const f of body.functions) {
      const tools = Object.entries(f.tools).flatMap(([server, names]) => names.map((n) => `${server}.${n}`));
      console.log(`${f.name}: ${f.steps.join(' → ')}${tools.length ? `  [tools: ${tools.join(', ')}]` : ''}${f.description ? `\n  ${f.description}` : ''}`);
    }
  return 0;
}
