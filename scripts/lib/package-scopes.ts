/**
 * Faster start-up: a resolve hook for the relative imports between a package's own files.
 *
 * To tell whether a `.js` file is ESM, Node 22 looks up its package.json for every file it
 * loads and copies the parsed result, which parses the package's whole `exports` map again
 * each time (package_json_reader's getPackageScopeConfig spreads its lazily parsed data).
 * drizzle-orm's package.json is 179 KB and an API process loads hundreds of its files:
 * about half of `baton api`'s start-up went there (a CPU profile of its imports).
 *
 * The hook resolves `./x.js` and `../x.js` imported from a file under node_modules itself
 * (the same URL arithmetic and realpath Node does) and reads each package.json's `type`
 * once. Anything else goes to Node's own resolution: bare and `#` specifiers, require(),
 * other extensions, and scopes whose package.json declares no `type` (Node then looks at
 * the syntax, which only it can do).
 */
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Format = 'module' | 'commonjs';

/** The format a `.js` file in `dir` has, from the nearest package.json; null when it does not say. */
export function createScopeTypes(): (dir: string) => Format | null {
  const byDir = new Map<string, Format | null>();
  const lookUp = (dir: string): Format | null => {
    const known = byDir.get(dir);
    if (known !== undefined) return known;
    let format: Format | null;
    let text: string | null = null;
    try {
      text = fs.readFileSync(path.join(dir, 'package.json'), 'utf8');
    } catch {
      // No package.json here: the scope is the parent's (Node stops at the file system's root).
    }
    if (text !== null) {
      let type: unknown;
      try {
        type = (JSON.parse(text) as { type?: unknown }).type;
      } catch {
        type = undefined; // Node reports a broken package.json itself.
      }
      format = type === 'module' ? 'module' : type === 'commonjs' ? 'commonjs' : null;
    } else {
      const parent = path.dirname(dir);
      format = parent === dir ? null : lookUp(parent);
    }
    byDir.set(dir, format);
    return format;
  };
  return lookUp;
}

const RELATIVE_JS = /^\.\.?\/.*\.js$/;

let registered = false;
let resolvedHere = 0;

/** How many imports the hook resolved itself (the rest went to Node's resolution). */
export const fastResolutions = (): number => resolvedHere;

/** Registers the hook once per process (the CLI does, before it loads a command). */
export function resolvePackageFilesFast(): void {
  if (registered || typeof module.registerHooks !== 'function') return;
  registered = true;
  const scopeType = createScopeTypes();
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      const parent = context.parentURL;
      if (parent?.startsWith('file:') && parent.includes('/node_modules/') && RELATIVE_JS.test(specifier) && context.conditions.includes('import')) {
        let file: string | null = null;
        try {
          file = fs.realpathSync(fileURLToPath(new URL(specifier, parent)));
        } catch {
          // Missing: Node's own resolution reports it as it always does.
        }
        const format = file === null ? null : scopeType(path.dirname(file));
        if (file !== null && format !== null) {
          resolvedHere++;
          return { url: pathToFileURL(file).href, format, shortCircuit: true };
        }
      }
      return nextResolve(specifier, context);
    },
  });
}
