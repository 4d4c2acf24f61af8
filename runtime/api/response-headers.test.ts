import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { SECURE, SECURE_OPTIONS } from './response-headers.ts';

test("the API's secure headers are exactly what Hono's secureHeaders sets with the API's options", async () => {
  const headers = new Headers();
  // Hono's middleware sets its headers on the response after the handler: a bare context is enough.
  await secureHeaders(SECURE_OPTIONS)({ res: { headers } } as unknown as Context, async () => {});
  assert.deepEqual(
    SECURE.map(([name, value]) => [name.toLowerCase(), value]).sort(),
    [...headers].sort(),
  );
});
