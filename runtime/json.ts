/**
 * What PostgreSQL's jsonb can keep. It refuses U+0000 and lone UTF-16 surrogates
 * ("\ud800"), and JSON.stringify overflows the stack near 5,000 levels of nesting
 * (JSON.parse does not). Request bodies are checked so that an odd body is a 400, not
 * a 500; step results, so that a step cannot return something no commit will ever take
 * (it would be re-run forever). No honest value nests this deep.
 */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableText = (s: string) =>
  s.includes('\u0000') ? 'the character U+0000' : LONE_SURROGATE.test(s) ? 'a lone UTF-16 surrogate' : null;

/** Why `root` cannot be stored as jsonb (naming where, from `path`), or null when it can. */
export function unstorable(root: unknown, rootPath = 'body'): string | null {
  // Iterative, so that the check itself cannot overflow.
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value: root, depth: 0, path: rootPath }];
  while (stack.length > 0) {
    const { value, depth, path } = stack.pop() as (typeof stack)[number];
    if (typeof value === 'string') {
      const bad = unstorableText(value);
      if (bad) return `${path}: contains ${bad}, which cannot be stored`;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return `${path}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`;
    for (const [key, child] of Object.entries(value)) {
      const bad = unstorableText(key);
      if (bad) return `${path}: a key contains ${bad}, which cannot be stored`;
      stack.push({ value: child, depth: depth + 1, path: Array.isArray(value) ? `${path}[${key}]` : `${path}.${key.slice(0, 100)}` });
    }
  }
  return null;
}
