/**
 * The HTTP API (Hono). One error handler maps BatonError codes to statuses
 * (runtime/errors.ts); a client's mistake is always a 4xx JSON error, a database
 * outage a 503, never a hang.
 *
 * Error body: { "error": { "code", "message", "details" } }.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { isTransientDbError } from '../db/sqlstate.ts';
import { BatonError, ERROR_CODES } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { type ApiEnv, apiKeyAuth } from './auth.ts';
import { requestSizeLimit } from './body-limit.ts';
import { noStore, withSecureHeaders } from './response-headers.ts';
import { runsRoutes } from './runs-routes.ts';
import { uiRoutes } from './ui/routes.ts';
import { createSessions, sessionOrKey } from './ui/session.ts';


function errorResponse(c: Context, err: BatonError) {
  const body = { error: { code: err.code, message: err.message, details: err.details ?? null } };
  if (err.code === 'unauthorized') c.header('WWW-Authenticate', 'Bearer realm="baton"');
  if (err.status === 429) c.header('Retry-After', String(Math.max(1, Math.ceil((err.retryAfterMs ?? 1000) / 1000))));
  return c.json(body, err.status as 400);
}

export function createApi(p: Platform): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.use(methodNotAllowed({ app, onMethodNotAllowed: (c, methods) => {
    c.header('Allow', methods.join(', '));
    return errorResponse(c, new BatonError('method_not_allowed', `${c.req.method} is not allowed here; use ${methods.join(', ')}`));
  } }));
  app.use(withSecureHeaders);
  app.use(async function countRequests(c, next) {
    const started = performance.now();
    await next();
    p.metrics.httpRequests.inc({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
    p.metrics.httpSeconds.observe({ method: c.req.method, route: c.req.routePath }, (performance.now() - started) / 1000);
  });

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const check = async (what: () => Promise<unknown>) => {
      try {
        await Promise.race([what(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 2000))]);
        return 'ok';
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    };
    const [database, queue] = await Promise.all([check(() => p.db.execute('select 1')), check(() => p.queue.ping())]);
    const ready = database === 'ok' && queue === 'ok';
    return c.json({ ready, database, queue }, ready ? 200 : 503);
  });
  // No /metrics here: it is served on BATON_METRICS_PORT, off the public port (scripts/lib/metrics-server.ts).
  // The run inspector: its pages and its sign-in (a cookie session the /v1 routes also accept).
  const sessions = createSessions({ enabled: p.config.auth, db: p.db, withDb: p.withDb, cacheMs: p.config.limits.authCacheMs });
  app.route('/ui', uiRoutes(p, sessions));

  app.use(
    '/v1/*',
    noStore,
    requestSizeLimit(),
    sessionOrKey(
      sessions,
      apiKeyAuth({
        enabled: p.config.auth,
        db: p.db,
        withDb: p.withDb,
        limits: p.limits,
        cacheMs: p.config.limits.authCacheMs,
        failuresPerMinute: p.config.limits.authFailuresPerMinute,
        trustedProxyHops: p.config.limits.trustedProxyHops,
        onLimiterError: (err) => p.log.warn({ err: err.message }, 'auth failure limiter unavailable'),
      }),
    ),
  );
  app.route('/v1', runsRoutes(p));

  app.notFound((c) => errorResponse(c, new BatonError('route_not_found', `no route ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => {
    if (err instanceof BatonError) {
      if (ERROR_CODES[err.code].status >= 500) p.log.warn({ code: err.code, err: err.message }, 'request failed');
      return errorResponse(c, err);
    }
    if (err instanceof HTTPException) {
      const code = err.status === 413 ? 'payload_too_large' : err.status === 401 ? 'unauthorized' : 'invalid_request';
      return errorResponse(c, new BatonError(code, err.message || 'bad request'));
    }
    if (isTransientDbError(err)) return errorResponse(c, new BatonError('database_unavailable', 'the database is unavailable; try again shortly'));
    p.log.error({ err: (err as Error).stack ?? String(err) }, 'unhandled error');
    return c.json({ error: { code: 'internal', message: 'internal error', details: null } }, 500);
  });
  return app;
}
