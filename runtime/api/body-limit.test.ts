import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Hono } from 'hono';
import { serveApp, type Served } from '../../scripts/lib/serve.ts';
import { BatonError } from '../errors.ts';
import { MAX_BODY_BYTES, readJson } from './body.ts';
import { requestSizeLimit } from './body-limit.ts';

// Over real HTTP: in-process `app.request` bodies carry no Content-Length, and the limit
// has one path for bodies that say their size and one for bodies that stream (chunked).
const app = new Hono();
app.use(requestSizeLimit());
app.post('/', async (c) => c.json({ bytes: JSON.stringify(await readJson(c)).length }));
app.onError((err, c) => c.json({ code: err instanceof BatonError ? err.code : 'internal' }, err instanceof BatonError ? (err.status as 413) : 500));

let served: Served;
before(async () => {
  served = await serveApp(app, 0, '127.0.0.1');
});
after(() => served.close(100));

const json = (size: number) => JSON.stringify('x'.repeat(size));
const streamOf = (text: string) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += 64 * 1024) c.enqueue(bytes.subarray(i, i + 64 * 1024));
      c.close();
    },
  });
const send = async (body: string | ReadableStream<Uint8Array>) => {
  const res = await fetch(served.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit);
  return { status: res.status, body: (await res.json()) as { bytes?: number; code?: string } };
};

test('a body that says its size (Content-Length): over the limit is 413, up to it is read', async () => {
  assert.deepEqual(await send(json(MAX_BODY_BYTES)), { status: 413, body: { code: 'payload_too_large' } });
  assert.deepEqual(await send(json(MAX_BODY_BYTES - 2)), { status: 200, body: { bytes: MAX_BODY_BYTES } });
});

test('a streamed body (chunked, no Content-Length): over the limit is 413, up to it is read', async () => {
  assert.deepEqual(await send(streamOf(json(MAX_BODY_BYTES))), { status: 413, body: { code: 'payload_too_large' } });
  assert.deepEqual(await send(streamOf(json(MAX_BODY_BYTES - 2))), { status: 200, body: { bytes: MAX_BODY_BYTES } });
});
