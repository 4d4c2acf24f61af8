/**
 * Strict request bodies: JSON only (Content-Type application/json or absent), parsed
 * once, storable (no U+0000, bounded nesting), with errors that name what was wrong.
 * The size limit is enforced before this by the body-limit middleware.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import { BatonError } from '../errors.ts';

export async function readJson(c: Context, opts: { optional?: boolean } = {}): Promise<unknown> {
  const type = c.req.header('content-type');
  if (type && !/^application\/([a-z0-9.+-]*\+)?json\b/i.test(type.trim())) {
    throw new BatonError('unsupported_media_type', `send JSON with Content-Type: application/json (got "${type.slice(0, 100)}")`);
  }
  const text = await c.req.text();
  if (text.trim() === '') {
    if (opts.optional) return undefined;
    throw new BatonError('invalid_json', 'the request body is empty; send a JSON value');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BatonError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  const problem = unstorable(value);
  if (problem) throw new BatonError('invalid_json', problem);
  return value;
}

/**
 * JSON that parses but cannot be kept: PostgreSQL's jsonb refuses U+0000 and lone
 * UTF-16 surrogates ("\ud800"), and JSON.stringify overflows the stack near 5,000
 * levels of nesting (JSON.parse does not); each would turn a client's odd body into a
 * 500. No honest input nests this deep.
 */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableText = (s: string) =>
  s.includes('\u0000') ? 'the character U+0000' : LONE_SURROGATE.test(s) ? 'a lone UTF-16 surrogate' : null;

function unstorable(root: unknown): string | null {
  // Iterative, so that the check itself cannot overflow.
  const stack: Array<{ value: unknown; depth: number; path: string }> = [{ value: root, depth: 0, path: 'body' }];
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

/** Validates with valibot; a failure is a 400 that names each field, e.g. `input.pr`. */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown, root: string, code: 'invalid_input' | 'invalid_request' = 'invalid_request'): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issues = result.issues.map((issue) => {
    const path = v.getDotPath(issue);
    return { path: path ? `${root}.${path}` : root, message: issue.message };
  });
  const first = issues[0];
  throw new BatonError(code, `${first.path}: ${first.message}`, { details: { issues } });
}
