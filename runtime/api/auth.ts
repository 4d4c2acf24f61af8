/**
 * Bearer API keys for every /v1 route. The key decides the tenant; a run belongs to
 * the tenant that created it. Lookups are remembered for BATON_AUTH_CACHE_MS (10 s) in
 * two bounded LRU caches, keyed by the key's hash so this process keeps no key in
 * memory: known keys, and unknown or revoked ones (a client repeating a wrong key costs
 * no database round trip). They are separate so that a flood of made-up keys cannot
 * evict the real ones. A revoked key stops working within the cache time, and so do
 * its open event streams (they ask `credential.valid()`).
 *
 * A string that is not shaped like a key is refused before any lookup. Each 401 counts
 * against the client's address (a sliding window in Redis, shared by all replicas);
 * past BATON_AUTH_FAILURES_PER_MIN the address gets 429 `too_many_auth_failures`
 * until the window slides, whatever key it sends, except a key this process already
 * knows is good.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import type { Db } from '../db/connect.ts';
import { BatonError } from '../errors.ts';
import type { Limits } from '../limits/limits.ts';
import { hashKey, isKeyShaped, tenantOfKey, touchApiKey } from '../store/api-keys.ts';

export const DEFAULT_TENANT = 'default';
const CACHE_ENTRIES = 10_000;

/** Who is calling: set by the authentication of /v1 (an API key here; other schemes set the same). */
export interface Credential {
  tenant: string;
  /** Still valid now? Long-lived responses (event streams) ask periodically and end when it is not. */
  valid(): Promise<boolean>;
}

export type ApiEnv = { Variables: { tenant: string; credential: Credential } };

export interface ApiKeyAuthOptions {
  enabled: boolean;
  db: Db;
  withDb<T>(fn: () => Promise<T>, budgetMs?: number): Promise<T>;
  limits: Limits;
  cacheMs: number;
  failuresPerMinute: number;
  trustedProxyHops: number;
  onLimiterError?: (err: Error) => void;
}

/**
 * The client's address: the TCP peer, or with `hops` trusted proxies in front, the
 * entry of X-Forwarded-For that the outermost of them appended. Null for requests that
 * did not come over a socket (in-process `app.request`).
 */
export function clientAddress(c: Context, hops: number): string | null {
  const peer = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress ?? null;
  if (hops <= 0 || !peer) return peer;
  const chain = (c.req.header('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return chain[chain.length - hops] ?? peer;
}

const ALWAYS: Credential = { tenant: DEFAULT_TENANT, valid: async () => true };

export function apiKeyAuth(opts: ApiKeyAuthOptions): MiddlewareHandler<ApiEnv> {
  const known = new LRUCache<string, string>({ max: CACHE_ENTRIES, ttl: opts.cacheMs });
  const unknown = new LRUCache<string, true>({ max: CACHE_ENTRIES, ttl: opts.cacheMs });
  const WINDOW_MS = 60_000;

  // One lookup per key at a time: when a key's entry expires, its hundred open streams and
  // its busy clients ask at once, and all of them wait for the same query.
  const inFlight = new Map<string, Promise<string | null>>();

  /** The key's tenant, or null for an unknown or revoked key; from the caches when they know. */
  async function tenantOf(key: string): Promise<string | null> {
    const hash = hashKey(key);
    const hit = known.get(hash);
    if (hit !== undefined) return hit;
    if (unknown.get(hash)) return null;
    let lookup = inFlight.get(hash);
    if (!lookup) {
      lookup = (async () => {
        const tenant = await opts.withDb(() => tenantOfKey(opts.db, key), 3000);
        if (tenant) {
          known.set(hash, tenant);
          touchApiKey(opts.db, key).catch(() => {});
        } else {
          unknown.set(hash, true);
        }
        return tenant;
      })().finally(() => inFlight.delete(hash));
      inFlight.set(hash, lookup);
    }
    return lookup;
  }

  const limiter = async (address: string, cost: number) => {
    try {
      return await opts.limits.hit(`authfail:${address}`, opts.failuresPerMinute, WINDOW_MS, cost);
    } catch (err) {
      // Redis down: the key check still guards every route; only the slowing-down is lost.
      opts.onLimiterError?.(err as Error);
      return { ok: true } as const;
    }
  };

  const byKey: MiddlewareHandler<ApiEnv> = async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const key = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    const address = clientAddress(c, opts.trustedProxyHops);
    const cachedGood = key !== undefined && isKeyShaped(key) && known.get(hashKey(key)) !== undefined;
    if (address && !cachedGood) {
      const v = await limiter(address, 0);
      if (!v.ok) {
        throw new BatonError('too_many_auth_failures', `too many requests with a missing, unknown or revoked API key from ${address}; retry later`, {
          retryAfterMs: v.retryAfterMs,
        });
      }
    }
    const refuse = async (message: string): Promise<never> => {
      if (address) await limiter(address, 1);
      throw new BatonError('unauthorized', message);
    };
    if (!key) return refuse('send an API key: Authorization: Bearer <key> (create one with `baton keys create`)');
    if (!isKeyShaped(key)) return refuse('the API key is unknown or revoked');
    const tenant = await tenantOf(key);
    if (!tenant) return refuse('the API key is unknown or revoked');
    c.set('tenant', tenant);
    c.set('credential', { tenant, valid: async () => (await tenantOf(key).catch(() => tenant)) === tenant });
    return next();
  };

  // Not async where it only passes the request on: an async middleware costs every request
  // a promise and a suspended frame more (the same below, in body-limit.ts and session.ts).
  return function apiKeyAuth(c, next) {
    if (opts.enabled) return byKey(c, next);
    c.set('tenant', DEFAULT_TENANT);
    c.set('credential', ALWAYS);
    return next();
  };
}
