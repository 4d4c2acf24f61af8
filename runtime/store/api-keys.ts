/**
 * API keys (README: table `api_keys`). A key is shown once when created; only its
 * SHA-256 is stored, so a leaked database dump holds no usable key.
 * Format: `bk_<id>_<secret>`; the id names the key in listings and logs.
 */
import crypto from 'node:crypto';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { apiKeys } from '../../schema/tables.ts';
import type { Db } from '../db/connect.ts';

/** What `createApiKey` makes: anything else is refused without a database round trip. */
const KEY_SHAPE = /^bk_[0-9a-f]{8}_[A-Za-z0-9_-]{32}$/;

export function isKeyShaped(key: string): boolean {
  return KEY_SHAPE.test(key);
}

export function hashKey(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

export async function createApiKey(db: Db, tenant: string, name?: string): Promise<{ id: string; key: string }> {
  const id = crypto.randomBytes(4).toString('hex');
  const key = `bk_${id}_${crypto.randomBytes(24).toString('base64url')}`;
  await db.insert(apiKeys).values({ id, tenant, name: name ?? null, hash: hashKey(key) });
  return { id, key };
}

/** The tenant a key belongs to, or null for an unknown or revoked key. */
export async function tenantOfKey(db: Db, key: string): Promise<string | null> {
  const [row] = await db
    .select({ tenant: apiKeys.tenant, id: apiKeys.id })
    .from(apiKeys)
    .where(and(eq(apiKeys.hash, hashKey(key)), isNull(apiKeys.revokedAt)));
  return row?.tenant ?? null;
}

export async function touchApiKey(db: Db, key: string): Promise<void> {
  await db.update(apiKeys).set({ lastUsedAt: sql`now()` }).where(eq(apiKeys.hash, hashKey(key)));
}

export async function listApiKeys(db: Db) {
  return db
    .select({ id: apiKeys.id, tenant: apiKeys.tenant, name: apiKeys.name, createdAt: apiKeys.createdAt, lastUsedAt: apiKeys.lastUsedAt, revokedAt: apiKeys.revokedAt })
    .from(apiKeys)
    .orderBy(apiKeys.createdAt);
}

export async function revokeApiKey(db: Db, id: string): Promise<boolean> {
  const rows = await db.update(apiKeys).set({ revokedAt: sql`now()` }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).returning({ id: apiKeys.id });
  return rows.length > 0;
}

/** A live key by its id, with its hash: the inspector's session cookies are signed with it (api/ui/session.ts). */
export async function liveKeyById(db: Db, id: string): Promise<{ tenant: string; hash: string } | null> {
  const [row] = await db
    .select({ tenant: apiKeys.tenant, hash: apiKeys.hash })
    .from(apiKeys)
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
  return row ?? null;
}
