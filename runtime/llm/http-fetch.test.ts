import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { createHttpFetch } from './http-fetch.ts';

let server: http.Server;
let base: string;
const connections = new Set<string>();

before(async () => {
  server = http.createServer((req, res) => {
    connections.add(`${req.socket.remotePort}`);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const wait = Number(url.searchParams.get('wait') ?? 0);
      setTimeout(() => {
        if (res.destroyed) return;
        if (url.pathname === '/echo') {
          res.writeHead(200, { 'content-type': 'application/json', 'x-seen': req.headers['x-key'] ?? '' });
          res.end(JSON.stringify({ method: req.method, body }));
        } else if (url.pathname === '/fail') {
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' });
          res.end('{"error":{"message":"slow down"}}');
        } else if (url.pathname === '/gzip') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
          res.end(zlib.gzipSync('{"zipped":true}'));
        } else if (url.pathname === '/empty') {
          res.writeHead(204).end();
        } else if (url.pathname === '/moved') {
          res.writeHead(307, { location: '/echo' }).end();
        } else if (url.pathname === '/events') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: one\n\n');
          setTimeout(() => res.end('data: two\n\n'), 50);
        } else if (url.pathname === '/cut') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
          res.write('{"partial":');
          setTimeout(() => res.socket?.destroy(), 20);
        } else if (url.pathname === '/hang') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: one\n\n');
        }
      }, wait);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

test('a request and its answer: method, headers and body there and back', async () => {
  const f = createHttpFetch();
  const res = await f(`${base}/echo`, { method: 'POST', headers: { 'x-key': 'k', 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(res.status, 200);
  assert.equal(res.ok, true);
  assert.equal(res.headers.get('x-seen'), 'k');
  assert.deepEqual(await res.json(), { method: 'POST', body: '{"a":1}' });
});

test('an error status is an answer, not a rejection; a gzip body is decoded; 204 has no body', async () => {
  const f = createHttpFetch();
  const failed = await f(`${base}/fail`, { method: 'POST', body: '{}' });
  assert.deepEqual([failed.status, failed.ok, failed.headers.get('retry-after')], [429, false, '2']);
  assert.equal(await failed.text(), '{"error":{"message":"slow down"}}');
  assert.deepEqual(await (await f(`${base}/gzip`)).json(), { zipped: true });
  const empty = await f(`${base}/empty`);
  assert.deepEqual([empty.status, empty.body], [204, null]);
});

test('a redirect is followed, as fetch does', async () => {
  const res = await createHttpFetch()(`${base}/moved`, { method: 'POST', body: 'again' });
  assert.deepEqual(await res.json(), { method: 'POST', body: 'again' });
});

test('calls one after another reuse one keep-alive connection', async () => {
  const f = createHttpFetch();
  connections.clear();
  for (let i = 0; i < 5; i++) await (await f(`${base}/echo`, { method: 'POST', body: String(i) })).text();
  assert.equal(connections.size, 1);
});

test('an answer slower than the idle timeout is still awaited (only idle connections close)', async () => {
  const res = await createHttpFetch({ keepAliveMs: 50 })(`${base}/echo?wait=200`, { method: 'POST', body: 'slow' });
  assert.deepEqual(await res.json(), { method: 'POST', body: 'slow' });
});

test('an event stream arrives as it is written', async () => {
  const res = await createHttpFetch()(`${base}/events`);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  assert.equal(Buffer.from(first.value as Uint8Array).toString(), 'data: one\n\n');
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += Buffer.from(value).toString();
  }
  assert.equal(rest, 'data: two\n\n');
});

test('an abort rejects with the signal reason, before the answer and while it streams', async () => {
  const f = createHttpFetch();
  const early = new AbortController();
  early.abort(new Error('cancelled early'));
  await assert.rejects(f(`${base}/echo`, { signal: early.signal }), /cancelled early/);
  const waiting = new AbortController();
  const pending = f(`${base}/echo?wait=5000`, { signal: waiting.signal });
  setTimeout(() => waiting.abort(new DOMException('timed out', 'TimeoutError')), 30);
  await assert.rejects(pending, (err: Error) => err.name === 'TimeoutError');
  const streaming = new AbortController();
  const res = await f(`${base}/hang`, { signal: streaming.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  streaming.abort(new Error('stop streaming'));
  await assert.rejects(reader.read(), /stop streaming/);
});

test('a connection that fails rejects as fetch does: TypeError "fetch failed" with the cause', async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(createHttpFetch()(`http://127.0.0.1:${port}/x`, { method: 'POST', body: '{}' }), (err: TypeError) => {
    assert.ok(err instanceof TypeError);
    assert.equal(err.message, 'fetch failed');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    return true;
  });
  await assert.rejects(createHttpFetch()(`${base}/cut`), (err: TypeError) => err instanceof TypeError && err.message === 'fetch failed');
});
