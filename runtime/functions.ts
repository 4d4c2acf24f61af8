/**
 * The function registry: every `functions/<name>/index.ts` whose default export is
 * a `defineAgent(...)`. The folder name and the agent's name must agree, since both
 * name the function in URLs, streams and Kubernetes objects.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Agent, isAgent } from './define.ts';

export type FunctionRegistry = ReadonlyMap<string, Agent>;

export async function loadFunctions(dir: string, only?: readonly string[]): Promise<FunctionRegistry> {
  const registry = new Map<string, Agent>();
  if (!fs.existsSync(dir)) return registry;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (only && !only.includes(entry.name)) continue;
    // A folder, or a link to one (a function shared between projects).
    if (!entry.isDirectory() && !(entry.isSymbolicLink() && fs.statSync(path.join(dir, entry.name)).isDirectory())) continue;
    const file = path.join(dir, entry.name, 'index.ts');
    if (!fs.existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
    if (!isAgent(mod.default)) throw new Error(`${file}: the default export must be defineAgent({...})`);
    if (mod.default.name !== entry.name) {
      throw new Error(`${file}: the agent is named "${mod.default.name}" but its folder is "${entry.name}"`);
    }
    registry.set(entry.name, mod.default);
  }
  if (only) for (const name of only) if (!registry.has(name)) throw new Error(`no function "${name}" in ${dir}`);
  return registry;
}

export function registryOf(...agents: Agent[]): FunctionRegistry {
  return new Map(agents.map((a) => [a.name, a]));
}

/** Reads `functions/<name>/example.json`, the function's documented valid input. */
export function exampleInput(dir: string, name: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(dir, name, 'example.json'), 'utf8'));
}
