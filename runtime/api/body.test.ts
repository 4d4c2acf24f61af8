import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Hono } from 'hono';
import type { BatonError } from '../errors.ts';
import { MAX_JSON_DEPTH } from '../json.ts';
import { readJson } from './body.ts';

const app = new Hono();
app.post('/', async (c) => c.json({ value: (await readJson(c)) ?? null }));
app.onError((err, c) => c.json({ code: (err as BatonError).code, message: err.message }, 400));
const send = async (body: string, type = 'application/json') =>
  (await (await app.request('/', { method: 'POST', headers: { 'content-type': type }, body })).json()) as { value?: unknown; code?: string; message?: string };

test('ordinary JSON, unicode and emoji included, is read as it is', async () => {
  assert.deepEqual(await send('{"a":[1,"漢字 🙂 \\u00e9"],"b":{"c":null}}'), { value: { a: [1, '漢字 🙂 é'], b: { c: null } } });
  assert.deepEqual(await send(`${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`).then((r) => r.code), undefined);
});

test('JSON that PostgreSQL or JSON.stringify cannot take is a 400 naming where', async () => {
  assert.deepEqual(await send('{"meta":{"note":"a\\u0000b"}}'), { code: 'invalid_json', message: 'body.meta.note: contains the character U+0000, which cannot be stored' });
  assert.deepEqual(await send('{"k\\u0000":1}'), { code: 'invalid_json', message: 'body: a key contains the character U+0000, which cannot be stored' });
  assert.deepEqual(await send('["ok","\\ud800"]'), { code: 'invalid_json', message: 'body[1]: contains a lone UTF-16 surrogate, which cannot be stored' });
  const deep = await send(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`);
  assert.equal(deep.code, 'invalid_json');
  assert.match(deep.message ?? '', /nested deeper than 64 levels/);
});

test('not JSON, empty, or another media type is refused', async () => {
  assert.equal((await send('{"a":')).code, 'invalid_json');
  assert.equal((await send('')).code, 'invalid_json');
  assert.equal((await send('{}', 'text/plain')).code, 'unsupported_media_type');
});
