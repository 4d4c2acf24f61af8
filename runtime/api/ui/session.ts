/**
 * The run inspector's sign-in: a browser trades an API key (a form on /ui) for an
 * HttpOnly, SameSite=Strict cookie. The page's own requests and its EventSource
 * (which cannot send an Authorization header) then carry the cookie, and no key sits
 * in script-readable storage.
 *
 * Cookie value: `<key id>.<expiry, unix s>.<HMAC-SHA256 over "session.<id>.<exp>">`,
 * keyed by the key's SHA-256 as stored in `api_keys` (never sent to a client). So a
 * session is valid on every API replica with no session table, it holds no key, and
 * revoking the key ends its sessions (within the key cache's time, 10 s by default).
 *
 * CSRF: a request that authenticates with the cookie and is not GET/HEAD must send
 * `X-CSRF-Token` (an HMAC over "csrf.<id>.<exp>", given to the page in a meta tag) and
 * must not be marked cross-site by the browser (`Sec-Fetch-Site`). A custom header
 * cannot be sent cross-origin without a CORS preflight, which this API never grants.
 */
import crypto from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { LRUCache } from 'lru-cache';
import type { Db } from '../../db/connect.ts';
import { BatonError } from '../../errors.ts';
import { hashKey, isKeyShaped, liveKeyById, tenantOfKey } from '../../store/api-keys.ts';
import { type ApiEnv, DEFAULT_TENANT } from '../auth.ts';

export const SESSION_COOKIE = 'baton_session';
export const CSRF_HEADER = 'x-csrf-token';
const SESSION_TTL_S = 8 * 3600;
const CACHE_MAX = 10_000;

export interface Session {
  tenant: string;
  /** The token this session's unsafe requests must echo in X-CSRF-Token ('' when auth is off). */
  csrf: string;
  /** false when BATON_AUTH=off: everyone is the default tenant, there is nothing to sign in to. */
  signedIn: boolean;
}

export interface Sessions {
  readonly enabled: boolean;
  /** Signs in with an API key: sets the cookie and returns true, or false for an unknown or revoked key. */
  login(c: Context, key: string): Promise<boolean>;
  logout(c: Context): void;
  /** The request's session from its cookie, or null (no cookie, expired, forged, or its key revoked). */
  read(c: Context): Promise<Session | null>;
  /** Throws 403 unless an unsafe request carries this session's CSRF token (header, or `token` from a form) and is not cross-site. */
  checkCsrf(c: Context, s: Session, token?: string): void;
}

const mac = (secret: string, text: string) => crypto.createHmac('sha256', secret).update(text).digest('base64url');

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export function createSessions(opts: {
  enabled: boolean;
  db: Db;
  withDb<T>(fn: () => Promise<T>, budgetMs?: number): Promise<T>;
  /** How long a key lookup is trusted (the API keys' cache time): a revoked key's sessions end within it. */
  cacheMs?: number;
}): Sessions {
  const cacheMs = opts.cacheMs ?? 10_000;
  // Bounded, and never emptied at once; `false` remembers an unknown or revoked key id.
  const cache = new LRUCache<string, { tenant: string; hash: string } | false>({ max: CACHE_MAX, ttl: cacheMs });
  const keyById = async (id: string) => {
    const hit = cache.get(id);
    if (hit !== undefined) return hit || null;
    const key = await opts.withDb(() => liveKeyById(opts.db, id), 3000);
    cache.set(id, key ?? false);
    return key;
  };
  const secure = (c: Context) => new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';

  return {
    enabled: opts.enabled,
    async login(c, key) {
      if (!isKeyShaped(key)) return false;
      const tenant = await opts.withDb(() => tenantOfKey(opts.db, key), 3000);
      if (!tenant) return false;
      const id = key.split('_')[1] as string;
      const exp = Math.floor(Date.now() / 1000) + SESSION_TTL_S;
      const value = `${id}.${exp}.${mac(hashKey(key), `session.${id}.${exp}`)}`;
      setCookie(c, SESSION_COOKIE, value, { path: '/', httpOnly: true, sameSite: 'Strict', secure: secure(c), maxAge: SESSION_TTL_S });
      return true;
    },
    logout(c) {
      deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: secure(c) });
    },
    async read(c) {
      if (!opts.enabled) return { tenant: DEFAULT_TENANT, csrf: '', signedIn: false };
      const value = getCookie(c, SESSION_COOKIE);
      const m = /^([0-9a-f]{8})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value ?? '');
      if (!m) return null;
      const [, id, exp, sig] = m as unknown as [string, string, string, string];
      if (Number(exp) * 1000 < Date.now()) return null;
      const key = await keyById(id);
      if (!key || !sameMac(sig, mac(key.hash, `session.${id}.${exp}`))) return null;
      return { tenant: key.tenant, csrf: mac(key.hash, `csrf.${id}.${exp}`), signedIn: true };
    },
    checkCsrf(c, s, token = c.req.header(CSRF_HEADER)) {
      if (c.req.method === 'GET' || c.req.method === 'HEAD' || !s.signedIn) return;
      const site = c.req.header('sec-fetch-site');
      if (site && site !== 'same-origin') throw new BatonError('forbidden', `a ${site} request cannot use the inspector's session`);
      if (!sameMac(token ?? '', s.csrf)) {
        throw new BatonError('forbidden', 'missing or wrong X-CSRF-Token for the inspector session (reload the page)');
      }
    },
  };
}

/**
 * /v1 authentication: an Authorization header goes to the API-key check as always; a
 * request without one but with the inspector's cookie is authenticated by its session
 * (CSRF-checked). The key check stays the only path for every other client.
 */
export function sessionOrKey(sessions: Sessions, keyAuth: MiddlewareHandler<ApiEnv>): MiddlewareHandler<ApiEnv> {
  const bySession: MiddlewareHandler<ApiEnv> = async (c, next) => {
    const session = await sessions.read(c);
    if (!session) throw new BatonError('unauthorized', 'the inspector session expired or its key was revoked; sign in again at /ui');
    sessions.checkCsrf(c, session);
    c.set('tenant', session.tenant);
    // Long-lived requests (event streams) re-check it: a revoked key or an expired session ends them.
    c.set('credential', {
      tenant: session.tenant,
      valid: async () => {
        try {
          return (await sessions.read(c))?.tenant === session.tenant;
        } catch {
          return true; // the database is down: keep the stream, as the key check does
        }
      },
    });
    return next();
  };
  return function sessionOrKey(c, next) {
    if (sessions.enabled && c.req.header('authorization') === undefined && getCookie(c, SESSION_COOKIE) !== undefined) return bySession(c, next);
    return keyAuth(c, next);
  };
}
