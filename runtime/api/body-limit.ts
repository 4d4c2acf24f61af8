/**
 * The request-size limit (MAX_BODY_BYTES) for the API and the function apps.
 *
 * Hono's `bodyLimit` asks for `c.req.raw.body` first, and on @hono/node-server that
 * turns the light request into a full web `Request` with a web stream over the socket,
 * about a tenth of what a POST costs the API. A body with a Content-Length needs none
 * of that: Node's HTTP parser delivers exactly that many bytes, so the header is the
 * size, and the body is then read once, straight from the socket (`readJson`).
 * Bodies of unknown length (chunked) still go through Hono's `bodyLimit`, which counts
 * them as they stream.
 */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { BatonError } from '../errors.ts';
import { MAX_BODY_BYTES } from './body.ts';

const tooLarge = (): never => {
  throw new BatonError('payload_too_large', `the request body is over ${MAX_BODY_BYTES} bytes`);
};

export function requestSizeLimit(): MiddlewareHandler {
  const streamed = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge });
  return function requestSizeLimit(c, next) {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    const length = c.req.header('content-length');
    if (length === undefined || c.req.header('transfer-encoding') !== undefined) return streamed(c, next);
    if (Number(length) > MAX_BODY_BYTES) tooLarge();
    return next();
  };
}
