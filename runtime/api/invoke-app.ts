/**
 * A function served as its own Hono app (a Knative Service in `knative` mode):
 * `POST /invoke` runs one step for a `{ run_id, seq }` envelope through exactly the
 * code path the in-process worker uses, and answers the outcome. The dispatcher acks
 * its stream message on any 2xx; on a 5xx it leaves it pending to be retried.
 *
 * Every invocation carries the dispatcher's credential (invoke-auth.ts) and stays
 * under the API's body limit; `/healthz` stays open for the probes.
 *
 * A request that goes away (the dispatcher timed out, or its pod stopped) means the
 * step will be dispatched again: the step is then stopped like a shutdown stops it
 * (lease released, step handed back), rather than finished alongside its retry.
 */
import { type Context, Hono } from 'hono';
import * as v from 'valibot';
import { executeStep } from '../engine/execute-step.ts';
import { BatonError, ERROR_CODES } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { readJson, validate } from './body.ts';
import { requestSizeLimit } from './body-limit.ts';
import { invokeCredential } from './invoke-auth.ts';
import { contextFromHeaders } from '../../tools/lib/tracing.ts';

const Envelope = v.object({
  run_id: v.pipe(v.string(), v.uuid('must be a run id (UUID)')),
  seq: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** The run's trace (its root's `traceparent`), carried on to the next step's wake-up. */
  trace: v.optional(v.pipe(v.string(), v.maxLength(512))),
});

/** `token`: the shared secret invocations must carry; default BATON_INVOKE_TOKEN (none → every invocation is refused). */
export function createInvokeApp(p: Platform, opts: { worker: string; shutdown?: AbortSignal; token?: string | null }): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, functions: [...p.functions.keys()] }));
  app.use(
    '/invoke/*',
    invokeCredential(opts.token !== undefined ? opts.token : p.config.invokeToken),
    requestSizeLimit(),
  );
  const invoke = (fn: string) => async (c: Context) => {
    const envelope = validate(Envelope, await readJson(c), 'body');
    const callerGone = c.req.raw.signal;
    const shutdown = opts.shutdown ? AbortSignal.any([opts.shutdown, callerGone]) : callerGone;
    // The step span's parent is the dispatcher's span (the `traceparent` header), when it sent one.
    const outcome = await executeStep(
      p,
      fn,
      { runId: envelope.run_id, seq: envelope.seq, trace: envelope.trace },
      { worker: opts.worker, shutdown, traceParent: contextFromHeaders(c.req.raw.headers) },
    );
    return c.json({ outcome });
  };
  // One function per app in Knative; several are served by name for local use.
  app.post('/invoke', async (c) => {
    if (p.functions.size !== 1) throw new BatonError('invalid_request', 'this app serves several functions; POST /invoke/:function');
    return invoke([...p.functions.keys()][0])(c);
  });
  app.post('/invoke/:function', (c) => invoke(c.req.param('function'))(c));
  app.onError((err, c) => {
    const e = err instanceof BatonError ? err : new BatonError('internal', (err as Error).message);
    return c.json({ error: { code: e.code, message: e.message, details: e.details ?? null } }, ERROR_CODES[e.code].status as 400);
  });
  return app;
}
