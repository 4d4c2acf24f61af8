/**
 * The running `baton dev`'s admin endpoint: how `baton keys` reaches the embedded
 * database while `baton dev` holds it (PGlite admits one process; a second one
 * opening the same files would write behind the first one's back and lose it).
 *
 * It listens on 127.0.0.1 with a random bearer token kept in <data dir>/dev.json
 * (mode 0600), so only someone who can read the data directory, who could read the
 * database files anyway, can use it. It does what `baton keys` does, nothing more.
 */
import crypto from 'node:crypto';
import { Hono } from 'hono';
import type { Db } from '../../runtime/db/connect.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../../runtime/store/api-keys.ts';
import { CliError } from './cli.ts';
import type { DevRecord } from './local-processes.ts';

export interface KeyRow {
  id: string;
  tenant: string;
  name: string | null;
  createdAt: string | Date;
  lastUsedAt: string | Date | null;
  revokedAt: string | Date | null;
}

/** What `baton keys` needs, from the database directly or through `baton dev`. */
export interface KeyStore {
  create(tenant: string, name: string | undefined): Promise<{ id: string; key: string }>;
  list(): Promise<KeyRow[]>;
  revoke(id: string): Promise<boolean>;
}

export function dbKeyStore(db: Db): KeyStore {
  return {
    create: (tenant, name) => createApiKey(db, tenant, name),
    list: () => listApiKeys(db),
    revoke: (id) => revokeApiKey(db, id),
  };
}

export function createAdminToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/** The admin app `baton dev` serves on loopback. */
export function devAdminApp(keys: KeyStore, token: string): Hono {
  const expected = Buffer.from(`Bearer ${token}`);
  const app = new Hono();
  app.use(async function adminToken(c, next) {
    const given = Buffer.from(c.req.header('authorization') ?? '');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return c.json({ error: 'unauthorized' }, 401);
    await next();
  });
  app.post('/keys', async (c) => {
    const body = (await c.req.json()) as { tenant: string; name?: string };
    return c.json(await keys.create(body.tenant, body.name));
  });
  app.get('/keys', async (c) => c.json(await keys.list()));
  app.post('/keys/:id/revoke', async (c) => c.json({ revoked: await keys.revoke(c.req.param('id')) }));
  return app;
}

/** `baton keys` talking to a running `baton dev`. */
export function devKeyStore(dev: DevRecord): KeyStore {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${dev.adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${dev.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(`cannot reach the running baton dev (pid ${dev.pid}) at ${dev.adminUrl}: ${(err as Error).message}`);
    }
    if (!res.ok) throw new CliError(`the running baton dev (pid ${dev.pid}) answered ${res.status}`);
    return (await res.json()) as T;
  };
  return {
    create: (tenant, name) => call('POST', '/keys', { tenant, name }),
    list: () => call('GET', '/keys'),
    revoke: async (id) => (await call<{ revoked: boolean }>('POST', `/keys/${encodeURIComponent(id)}/revoke`)).revoked,
  };
}
