/**
 * /ui: the run inspector, server-rendered (Hono's html helper) plus one small static
 * script, with no build step. Pages read the store directly, under the same tenant
 * rule as /v1 (a run of another tenant is "not found" here); every action the page
 * takes (start, cancel, retry, replay, signal) goes through /v1 with the session cookie.
 *
 * Headers: a strict Content-Security-Policy (scripts and styles from this origin only,
 * no inline code, no framing, forms post only here), no-store on every page.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { csrf } from 'hono/csrf';
import { html } from 'hono/html';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import { BatonError } from '../../errors.ts';
import { exampleInput } from '../../functions.ts';
import type { Platform } from '../../platform.ts';
import { getRun, getRunWithSteps, listRuns } from '../../store/runs.ts';
import { getStepDetail, stepDetailView } from '../../store/step-detail.ts';
import { type ApiEnv, clientAddress } from '../auth.ts';
import { page, loginPage } from './layout.ts';
import { runData, runLive, runPage } from './run-page.ts';
import { type RunsQuery, idPrefixRange, runRows, runsPage } from './runs-page.ts';
import type { Session, Sessions } from './session.ts';
import { stepView } from './step-view.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATUSES = new Set(['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled']);
const FUNCTION_NAME = /^[a-z][a-z0-9-]{0,39}$/;

/** The Content-Security-Policy of every /ui response (README "Run inspector"). */
export const UI_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

function loadStatic() {
  const files = new Map<string, { body: string; type: string; etag: string }>();
  for (const [name, type] of [
    ['inspector.js', 'text/javascript; charset=utf-8'],
    ['inspector.css', 'text/css; charset=utf-8'],
  ] as const) {
    const body = fs.readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');
    files.set(name, { body, type, etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return files;
}

/** `next` after sign-in: only a path inside /ui, so the form cannot redirect anywhere else. */
const safeNext = (next: unknown) => (typeof next === 'string' && /^\/ui(\/[^\s\\]*|\?[^\s\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/ui');

export function uiRoutes(p: Platform, sessions: Sessions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const files = loadStatic();

  app.use(secureHeaders({ contentSecurityPolicy: UI_CSP, xFrameOptions: 'DENY', crossOriginResourcePolicy: 'same-origin' }));
  app.use(async function noStore(c, next) {
    await next();
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });

  app.get('/static/:file', (c) => {
    const f = files.get(c.req.param('file'));
    if (!f) return c.text('not found', 404);
    c.header('ETag', f.etag);
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === f.etag) return c.body(null, 304);
    return c.body(f.body, 200, { 'Content-Type': f.type, 'X-Content-Type-Options': 'nosniff' });
  });

  // Sign-in and sign-out are form posts: the Origin check stops a login CSRF from another site.
  app.post('/login', csrf(), async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(form.next);
    const key = typeof form.key === 'string' ? form.key.trim() : '';
    if (!sessions.enabled) return c.redirect(next, 303);
    // Failed sign-ins count against the address like failed API-key requests (the same bucket):
    // each costs a key lookup, so they are slowed down the same way.
    const address = clientAddress(c, p.config.limits.trustedProxyHops);
    const failures = (cost: number) =>
      address ? p.limits.hit(`authfail:${address}`, p.config.limits.authFailuresPerMinute, 60_000, cost).catch(() => ({ ok: true as const })) : Promise.resolve({ ok: true as const });
    if (!(await failures(0)).ok) return c.html(loginPage({ next, error: 'Too many failed sign-ins from this address; try again in a minute.' }), 429);
    if (!(await sessions.login(c, key))) {
      await failures(1);
      return c.html(loginPage({ next, error: 'That API key is unknown or revoked.' }), 401);
    }
    return c.redirect(next, 303);
  });
  app.get('/login', async (c) => {
    const next = safeNext(c.req.query('next'));
    if (await sessions.read(c)) return c.redirect(next, 303);
    return c.html(loginPage({ next }));
  });
  app.post('/logout', csrf(), async (c) => {
    const session = await sessions.read(c);
    const form = await c.req.parseBody();
    if (session) sessions.checkCsrf(c, session, String(form.csrf ?? ''));
    sessions.logout(c);
    return c.redirect('/ui/login', 303);
  });

  /** The page's session, or a sign-in page (401) that comes back here afterwards. */
  const sessionOr401 = async (c: Context<ApiEnv>): Promise<Session | Response> => {
    const session = await p.withDb(() => sessions.read(c), 3000);
    if (session) return session;
    const url = new URL(c.req.url);
    return c.html(loginPage({ next: safeNext(url.pathname + url.search) }), 401);
  };

  app.get('/', async (c) => {
    const session = await sessionOr401(c);
    if (session instanceof Response) return session;
    const qs = c.req.query();
    const q: RunsQuery = {
      status: STATUSES.has(qs.status ?? '') ? qs.status : undefined,
      function: FUNCTION_NAME.test(qs.function ?? '') ? qs.function : undefined,
      q: qs.q?.trim() || undefined,
      after: UUID.test(qs.after ?? '') ? qs.after : undefined,
      limit: [25, 50, 100].includes(Number(qs.limit)) ? Number(qs.limit) : 50,
    };
    let error: string | undefined;
    let range: [string, string] | undefined;
    if (q.q) {
      if (UUID.test(q.q)) {
        const run = await p.withDb(() => getRun(p.db, q.q as string), 3000);
        if (run && run.tenant === session.tenant) return c.redirect(`/ui/runs/${run.id}`, 303);
      }
      const r = idPrefixRange(q.q);
      if (r) range = r;
      else error = `"${q.q.slice(0, 60)}" is not a run id or the start of one (hexadecimal digits and dashes)`;
    }
    const rows = error
      ? []
      : await p.withDb(
          () => listRuns(p.db, { tenant: session.tenant, status: q.status as never, function: q.function, afterRun: q.after, idRange: range, limit: q.limit + 1 }),
          3000,
        );
    const functions = [...p.functions.keys()];
    const examples: Record<string, unknown> = {};
    for (const name of functions) {
      try {
        examples[name] = exampleInput(p.config.functionsDir, name);
      } catch {
        examples[name] = {};
      }
    }
    if (c.req.query('fragment') === 'rows') return c.html(runRows(q, rows.slice(0, q.limit)));
    const body = runsPage({ q, runs: rows.slice(0, q.limit), hasMore: rows.length > q.limit, functions, examples, ...(error ? { error } : {}) });
    return c.html(page({ title: 'Runs', session, body }));
  });

  app.get('/runs/:id', async (c) => {
    const session = await sessionOr401(c);
    if (session instanceof Response) return session;
    const id = c.req.param('id');
    const run = UUID.test(id) ? await p.withDb(() => getRun(p.db, id), 3000) : null;
    if (!run || run.tenant !== session.tenant) {
      const body = html`<section class="panel"><h1>No such run</h1><p>There is no run <code>${id.slice(0, 100)}</code> that your key may see.</p><p><a href="/ui">All runs</a></p></section>`;
      return c.html(page({ title: 'Not found', session, body }), 404);
    }
    const full = await p.withDb(() => getRunWithSteps(p.db, run.id), 3000);
    if (!full) throw new BatonError('run_not_found', `no run ${run.id}`);
    const stepParam = c.req.query('step');
    const seq = stepParam !== undefined && /^\d{1,9}$/.test(stepParam) ? Number(stepParam) : null;
    const detail = seq === null ? null : await p.withDb(() => getStepDetail(p.db, run.id, seq), 3000);
    const live = ['queued', 'running', 'waiting'].includes(run.status);
    const step = detail ? stepView(stepDetailView(run.id, detail), { live }) : '';
    const fragment = c.req.query('fragment');
    if (fragment === 'live') return c.html(html`${runLive(full, detail ? seq : null)}${runData(full)}`);
    if (fragment === 'step') return c.html(step);
    return c.html(page({ title: `${run.function} ${run.id}`, session, runId: run.id, body: runPage(full, step, detail ? seq : null) }));
  });

  app.onError((err, c) => {
    const status = err instanceof BatonError || err instanceof HTTPException ? err.status : 500;
    if (status >= 500) p.log.error({ err: (err as Error).stack ?? String(err) }, 'inspector page failed');
    const message =
      err instanceof BatonError ? err.message : status === 403 ? 'This form was not sent from this site.' : status < 500 ? 'Bad request.' : 'Something went wrong while rendering this page.';
    return c.html(page({ title: 'Error', session: null, body: html`<section class="panel"><h1>Error</h1><p class="error-box">${message}</p></section>` }), status as 500);
  });
  return app;
}
