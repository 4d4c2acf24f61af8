/**
 * Strict request bodies: JSON only (Content-Type application/json or absent), parsed
 * once, storable (no U+0000, bounded nesting), with errors that name what was wrong.
 * The size limit is enforced before this by the body-limit middleware.
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import { BatonError } from '../errors.ts';
import { unstorable } from '../json.ts';

/** Largest request body the API and the function apps read. */
export const MAX_BODY_BYTES = 1024 * 1024;

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
