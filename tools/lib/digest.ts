/**
 * The digest of a tool call's arguments, as the runtime puts it in a capability token
 * (`args`) and in the call's `_meta`, and as a tool server recomputes it from what it
 * received: SHA-256 over the canonical JSON of the arguments (RFC 8785 style: object
 * keys sorted by UTF-16 code units, no whitespace, numbers as JSON.stringify writes
 * them), written `sha256:<hex>`. Equal arguments have equal digests whatever the key
 * order, so a tool server in any language can check it with a canonical-JSON library.
 */
import crypto from 'node:crypto';

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

export function digestArgs(args: unknown): string {
  // What goes on the wire first (Dates as strings, undefined dropped), so both ends digest the same value.
  const wire: unknown = JSON.parse(JSON.stringify(args ?? {}) ?? '{}');
  return `sha256:${crypto.createHash('sha256').update(JSON.stringify(canonical(wire))).digest('hex')}`;
}
