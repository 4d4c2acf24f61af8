/**
 * `baton keys create --tenant NAME [--name LABEL]` prints a new API key, alone on stdout
 * (it is shown once; only its hash is stored). `baton keys list`, `baton keys revoke ID`.
 * `baton keys signing` makes the Ed25519 pair that signs tool capability tokens.
 *
 * API keys live in the database: DATABASE_URL; without it, the embedded database of
 * this data directory, through the `baton dev` that holds it when one runs (never
 * behind its back), else opened directly under the same lock `baton dev` takes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { CliError, EXIT, parseCommand, usageError } from '../lib/cli.ts';
import { dbKeyStore, devKeyStore, type KeyStore } from '../lib/dev-admin.ts';
import { takeLock } from '../lib/embedded.ts';
import { readDevRecord } from '../lib/local-processes.ts';
import { createSigningKeys, readSigningKeys, signingKeyFiles } from '../lib/signing-keys.ts';

export const usage = 'usage: baton keys create --tenant NAME [--name LABEL] | list [--json] | revoke ID | signing [--replace] [--env]';

export const help = `${usage}

API keys (every /v1 route needs one: Authorization: Bearer <key>):
  create --tenant NAME [--name LABEL]  make a key for a tenant; the key alone goes to
                                       stdout (KEY=$(baton keys create --tenant acme)),
                                       shown once: only its SHA-256 is stored
  list [--json]                        ids, tenants, states (never keys)
  revoke ID                            end a key (a running API forgets it within 10 s)
They are kept in DATABASE_URL; without it, in the embedded database of \`npm start\`
(through the running \`baton dev\` when there is one).

Tool capability tokens:
  signing [--replace]                  make the Ed25519 pair that signs them (or keep the
                                       one there), in the data directory:
                                       tool-signing-key.pem (workers sign with it) and
                                       tool-public-key.pem (tool servers verify with it)
          [--env]                      also print both as BATON_TOOL_SIGNING_KEY= and
                                       BATON_TOOL_PUBLIC_KEY= lines, for other machines

Environment: DATABASE_URL, BATON_DATA_DIR (.baton).`;

const TENANT = /^[A-Za-z0-9_.-]{1,100}$/;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { tenant: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' }, replace: { type: 'boolean' }, env: { type: 'boolean' } },
    usage,
    { min: 1, max: 2 },
  );
  const [action, id] = positionals;
  const config = loadConfig();
  if (action === 'signing') return signing(config.dataDir, values.replace ?? false, values.env ?? false);
  if (action === 'create') {
    if (!values.tenant || !TENANT.test(values.tenant)) throw usageError('--tenant NAME is required (letters, digits, "_", "." or "-")', usage);
  } else if (action === 'revoke') {
    if (!id) throw usageError('revoke needs the key id (baton keys list)', usage);
  } else if (action !== 'list') throw usageError(`unknown action "${action}"`, usage);

  return withKeyStore(config, async (keys) => {
    if (action === 'create') {
      const created = await keys.create(values.tenant as string, values.name);
      console.log(created.key);
      console.error(`created key ${created.id} for tenant "${values.tenant}"; it is shown only now`);
    } else if (action === 'list') {
      const rows = await keys.list();
      if (values.json) console.log(JSON.stringify(rows, null, 2));
      for (const k of values.json ? [] : rows) {
        console.log(`${k.id}  ${k.tenant.padEnd(16)} ${k.revokedAt ? 'revoked' : 'active '}  created ${new Date(k.createdAt).toISOString()}${k.name ? `  ${k.name}` : ''}`);
      }
    } else {
      if (!(await keys.revoke(id as string))) throw new CliError(`no active key ${id}`);
      console.error(`revoked key ${id}`);
    }
    return 0;
  });
}

/** The key store: DATABASE_URL, else the running `baton dev`, else the embedded database under the lock. */
async function withKeyStore(config: ReturnType<typeof loadConfig>, fn: (keys: KeyStore) => Promise<number>): Promise<number> {
  if (config.databaseUrl) {
    const database = await openDatabase({ url: config.databaseUrl, poolSize: 1 });
    try {
      return await fn(dbKeyStore(database.db));
    } finally {
      await database.close();
    }
  }
  const dev = readDevRecord(config.dataDir);
  if (dev) return fn(devKeyStore(dev));
  const pgdata = path.join(config.dataDir, 'pgdata');
  if (!fs.existsSync(pgdata)) {
    throw new CliError(`DATABASE_URL is not set and there is no embedded database in ${config.dataDir} (npm start makes one)`, EXIT.usage);
  }
  // Refuses if a `baton dev` is starting (lock held, not yet serving): never two processes on one PGlite.
  const unlock = takeLock(config.dataDir);
  try {
    const database = await openDatabase({ dataDir: pgdata });
    try {
      await migrate(database.db);
      return await fn(dbKeyStore(database.db));
    } finally {
      await database.close();
    }
  } finally {
    unlock();
  }
}

/** Makes the pair, or keeps the one there (so a setup script can run it every time); --replace makes a new one. */
function signing(dir: string, replace: boolean, env: boolean): number {
  const { privateFile, publicFile } = signingKeyFiles(dir);
  const existing = replace ? null : readSigningKeys(dir);
  const pair = existing ?? createSigningKeys(dir, replace);
  console.error(`${existing ? 'kept the' : 'made an'} Ed25519 pair for tool capability tokens:
  ${privateFile}   private (0600): workers on this machine sign with it
  ${publicFile}   public: \`baton tools\` verifies with it
Elsewhere, give workers BATON_TOOL_SIGNING_KEY and tool servers BATON_TOOL_PUBLIC_KEY (PEM, or base64 of it).`);
  if (env) {
    console.log(`BATON_TOOL_SIGNING_KEY=${Buffer.from(pair.privateKeyPem).toString('base64')}`);
    console.log(`BATON_TOOL_PUBLIC_KEY=${Buffer.from(pair.publicKeyPem).toString('base64')}`);
  }
  return 0;
}
