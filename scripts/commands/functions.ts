/** `baton functions [--json]`: the functions the API serves, with their steps and tool scopes. */
import { parseArgs } from 'node:util';
import { createClient } from '../lib/client.ts';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } });
  const { body } = await createClient().request<{ functions: Array<{ name: string; description: string | null; steps: string[]; tools: Record<string, string[]> }> }>('GET', '/v1/functions');
  if (values.json) console.log(JSON.stringify(body.functions, null, 2));
  else
    for (const f of body.functions) {
      const tools = Object.entries(f.tools).flatMap(([server, names]) => names.map((n) => `${server}.${n}`));
      console.log(`${f.name}: ${f.steps.join(' → ')}${tools.length ? `  [tools: ${tools.join(', ')}]` : ''}${f.description ? `\n  ${f.description}` : ''}`);
    }
  return 0;
}
