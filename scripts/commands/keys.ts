/**
 * `baton keys create --tenant NAME [--name LABEL]` prints a new API key, alone on stdout
 * (it is shown once; only its hash is stored). `baton keys list`, `baton keys revoke ID`.
 * Talks to the database directly (DATABASE_URL, or the embedded one when `baton dev` is not running).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../../runtime/store/api-keys.ts';

const TENANT = /^[A-Za-z0-9_.-]{1,100}$/;

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, name: { type: 'string' } },
  });
  const [action, id] = positionals;
  if (!['create', 'list', 'revoke'].includes(action ?? '')) throw new Error('usage: baton keys create --tenant NAME [--name LABEL] | list | revoke ID');
  const config = loadConfig();
  const database = await openDatabase({ url: config.databaseUrl, dataDir: `${config.dataDir}/pgdata` });
  try {
    if (database.driver === 'pglite') await migrate(database.db);
    if (action === 'create') {
      if (!values.tenant || !TENANT.test(values.tenant)) throw new Error('--tenant NAME is required (letters, digits, "_", "." or "-")');
      const { id: keyId, key } = await createApiKey(database.db, values.tenant, values.name);
      console.log(key);
      console.error(`created key ${keyId} for tenant "${values.tenant}"; it is shown only now`);
    } else if (action === 'list') {
      for (const k of await listApiKeys(database.db)) {
        console.log(`${k.id}  ${k.tenant.padEnd(16)} ${k.revokedAt ? 'revoked' : 'active '}  created ${k.createdAt.toISOString()}${k.name ? `  ${k.name}` : ''}`);
      }
    } else {
      if (!id) throw new Error('usage: baton keys revoke ID');
      if (!(await revokeApiKey(database.db, id))) throw new Error(`no active key ${id}`);
      console.error(`revoked key ${id}`);
    }
    return 0;
  } finally {
    await database.close();
  }
}
