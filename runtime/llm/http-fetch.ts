/**
 * The `fetch` the model provider sends its requests with: node:http(s) over keep-alive
 * agents instead of the global fetch. A worker holds a thousand model calls open at
 * once; the global fetch (WHATWG streams, a Request, an AbortSignal and a resource
 * timing entry per call) cost it about twice the CPU and memory per call of a plain
 * request whose answer is read into one buffer.
 *
 * Same contract as fetch for what the AI SDK uses: a Response with status, headers and
 * body (an event stream is streamed, anything else read whole); an abort rejects with
 * the signal's reason and ends the request; a connection failure rejects with
 * `TypeError('fetch failed', { cause })`, as the global fetch does (the SDK maps it to
 * a retryable APICallError). What it does not handle goes to the global fetch: a
 * Request object or a body other than text or bytes, a redirect, and proxies from the
 * environment (NODE_USE_ENV_PROXY).
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';

export type Fetch = typeof globalThis.fetch;

/** Idle connections kept per host: as many as calls a worker may have open at once (BATON_CONCURRENCY). */
export interface HttpFetchOptions {
  maxFreeSockets?: number;
  /** How long an idle connection is kept open (default 4 s). */
  keepAliveMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);
/** Idle keep-alive connections close after this (the global fetch's default too), or sooner if the server says so. */
const KEEP_ALIVE_MS = 4000;

function plainHeaders(h: RequestInit['headers']): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers || Array.isArray(h)) return Object.fromEntries(h instanceof Headers ? h.entries() : h);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

function decoded(res: http.IncomingMessage): Readable {
  switch (String(res.headers['content-encoding'] ?? '').toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return res.pipe(zlib.createGunzip());
    case 'deflate':
      return res.pipe(zlib.createInflate());
    case 'br':
      return res.pipe(zlib.createBrotliDecompress());
    default:
      return res;
  }
}

function responseHeaders(res: http.IncomingMessage): Headers {
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    // The body handed on is already decoded.
    if (name === 'content-encoding' || name === 'content-length') continue;
    headers.append(raw[i], raw[i + 1]);
  }
  return headers;
}

export function createHttpFetch(opts: HttpFetchOptions = {}): Fetch {
  // `timeout` closes idle keep-alive connections (an answer awaited longer on a busy one is not cut).
  const agentOptions = { keepAlive: true, maxFreeSockets: opts.maxFreeSockets ?? 1000, timeout: opts.keepAliveMs ?? KEEP_ALIVE_MS, scheduling: 'lifo' as const };
  const agents = { 'http:': new http.Agent(agentOptions), 'https:': new https.Agent(agentOptions) };

  return async (input, init = {}) => {
    const body = init.body;
    const simple =
      (typeof input === 'string' || input instanceof URL) &&
      (body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array) &&
      !process.env.NODE_USE_ENV_PROXY;
    const url = simple ? new URL(input) : null;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) return globalThis.fetch(input, init);
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    const method = (init.method ?? 'GET').toUpperCase();

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      let streaming: http.IncomingMessage | null = null;
      const done = (settle: () => void) => {
        if (settled) return;
        settled = true;
        if (!streaming) signal?.removeEventListener('abort', onAbort);
        settle();
      };
      function onAbort() {
        req.destroy();
        streaming?.destroy(signal?.reason as Error);
        done(() => reject(signal?.reason));
      }
      const fail = (err: Error) => done(() => reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err })));
      const req = (url.protocol === 'https:' ? https : http).request(
        url,
        { method, headers: plainHeaders(init.headers), agent: agents[url.protocol as 'http:' | 'https:'] },
        (res) => {
          const status = res.statusCode ?? 0;
          if (REDIRECTS.has(status) && res.headers.location) {
            // Rare for a model API: the global fetch follows it (the body is text or bytes, so it can be sent again).
            res.resume();
            done(() => resolve(globalThis.fetch(input, init)));
            return;
          }
          const meta = { status, statusText: res.statusMessage ?? '', headers: responseHeaders(res) };
          if (NULL_BODY.has(status) || method === 'HEAD') {
            res.resume();
            done(() => resolve(new Response(null, meta)));
            return;
          }
          const stream = decoded(res);
          if (stream !== res) stream.once('error', (err) => res.destroy(err));
          if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
            // Streamed: an abort from here on ends the body with the signal's reason.
            streaming = res;
            res.once('close', () => signal?.removeEventListener('abort', onAbort));
            done(() => resolve(new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, meta)));
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.once('end', () => done(() => resolve(new Response(Buffer.concat(chunks), meta))));
          stream.once('error', fail);
          res.once('close', () => {
            if (!res.complete) fail(new Error('the connection closed before the whole answer arrived'));
          });
        },
      );
      req.once('error', fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(body ?? undefined);
    });
  };
}
