/**
 * Bearer API keys for every /v1 route. The key decides the tenant; a run belongs to
 * the tenant that created it. Lookups are cached briefly so a busy client costs no
 * database round trip per request (a revoked key stops working within the TTL).
 * The cache is keyed by the key's hash, so this process keeps no key in memory, and
 * a string that is not shaped like a key is refused before any lookup.
 */
import type { MiddlewareHandler } from 'hono';
import type { Db } from '../db/connect.ts';
import { BatonError } from '../errors.ts';
import { hashKey, isKeyShaped, tenantOfKey, touchApiKey } from '../store/api-keys.ts';

export const DEFAULT_TENANT = 'default';
const CACHE_TTL_MS = 10_000;

export type ApiEnv = { Variables: { tenant: string } };

export function apiKeyAuth(opts: { enabled: boolean; db: Db; withDb<T>(fn: () => Promise<T>, budgetMs?: number): Promise<T> }): MiddlewareHandler<ApiEnv> {
  const cache = new Map<string, { tenant: string | null; until: number }>();
  return async function apiKeyAuth(c, next) {
    if (!opts.enabled) {
      c.set('tenant', DEFAULT_TENANT);
      return next();
    }
    const header = c.req.header('authorization') ?? '';
    const key = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (!key) throw new BatonError('unauthorized', 'send an API key: Authorization: Bearer <key> (create one with `baton keys create`)');
    if (!isKeyShaped(key)) throw new BatonError('unauthorized', 'the API key is unknown or revoked');
    const hash = hashKey(key);
    let hit = cache.get(hash);
    if (!hit || hit.until < Date.now()) {
      const tenant = await opts.withDb(() => tenantOfKey(opts.db, key), 3000);
      hit = { tenant, until: Date.now() + CACHE_TTL_MS };
      if (cache.size > 10_000) cache.clear();
      cache.set(hash, hit);
      if (tenant) touchApiKey(opts.db, key).catch(() => {});
    }
    if (!hit.tenant) throw new BatonError('unauthorized', 'the API key is unknown or revoked');
    c.set('tenant', hit.tenant);
    return next();
  };
}
