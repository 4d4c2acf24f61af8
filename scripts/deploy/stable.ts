/** Deterministic output: keys sorted at every level (arrays keep their order), content hashes. */
import { createHash } from 'node:crypto';

export function sortKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeys) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out as T;
  }
  return value;
}

/** First `length` hex digits of the SHA-256 of the value's key-sorted JSON. */
export function contentHash(value: unknown, length = 8): string {
  return createHash('sha256').update(JSON.stringify(sortKeys(value))).digest('hex').slice(0, length);
}
