/**
 * The headers every API response carries: Hono's secure headers (with the API's options)
 * and, under /v1, `Cache-Control: no-store`. They are set after the handler, on the
 * response's own headers, except on a response built here whole (`completeJson`): the
 * accepted POST, the API's hottest answer, goes out with its headers as one plain object.
 * On @hono/node-server such a response is written straight from that object, while one
 * whose headers are touched after it was made becomes a WHATWG Headers (validated, sorted,
 * then copied back), about a tenth of the API's CPU per accepted run.
 */
import type { MiddlewareHandler } from 'hono';

/** What the API asks of Hono's secureHeaders (response-headers.test.ts checks SECURE against its output). */
export const SECURE_OPTIONS = { crossOriginResourcePolicy: 'same-origin', xFrameOptions: 'DENY' } as const;

/** The headers Hono's secureHeaders sets with SECURE_OPTIONS, in its order. */
export const SECURE: ReadonlyArray<readonly [string, string]> = [
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Origin-Agent-Cluster', '?1'],
  ['Referrer-Policy', 'no-referrer'],
  ['Strict-Transport-Security', 'max-age=15552000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Frame-Options', 'DENY'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0'],
];
const NO_STORE: [string, string] = ['cache-control', 'no-store'];
const COMPLETE_BASE: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  ...Object.fromEntries([...SECURE, NO_STORE].map(([name, value]) => [name.toLowerCase(), value])),
};

/** Responses that carry every header already: the middlewares below leave them as they are. */
const COMPLETE = Symbol('baton.completeResponse');
type Tagged = Response & { [COMPLETE]?: true };
const isComplete = (res: Response) => (res as Tagged)[COMPLETE] === true;

/** A JSON response with the secure headers, no-store and `extra` (lower-case names), built whole. */
export function completeJson(status: number, body: unknown, extra: Record<string, string>): Response {
  const res = new Response(JSON.stringify(body), { status, headers: { ...COMPLETE_BASE, ...extra } });
  (res as Tagged)[COMPLETE] = true;
  return res;
}

/** Every response: the secure headers (as Hono's secureHeaders with the API's options). */
export const withSecureHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  if (isComplete(c.res)) return;
  for (const [name, value] of SECURE) c.res.headers.set(name, value);
};

/** Runs hold inputs and outputs: no shared cache may keep them, errors included. */
export const noStore: MiddlewareHandler = async (c, next) => {
  await next();
  // On the response's own headers: c.header() after the handler would rebuild the response around a web stream of its body.
  if (!isComplete(c.res)) c.res.headers.set(...NO_STORE);
};
