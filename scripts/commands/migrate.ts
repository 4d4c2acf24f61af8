/**
 * `baton migrate`: applies schema/migrations to DATABASE_URL. The embedded database
 * (npm start) migrates itself at start; this verb never creates one.
 */
import pg from 'pg';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase, redactUrl } from '../../runtime/db/connect.ts';
import { SchemaTooNewError, migrate } from '../../runtime/db/migrate.ts';
import { SQLSTATE } from '../../runtime/db/sqlstate.ts';
import { CliError, EXIT, parseCommand } from '../lib/cli.ts';

export const usage = 'usage: baton migrate';

export const help = `${usage}

Applies the schema migrations to the PostgreSQL database at DATABASE_URL, in one
transaction under an advisory lock (several migrators at once queue; through
PgBouncer too). Prints what it applied, or that the database is up to date. A
database that does not exist yet is created first (connecting to the server's
"postgres" database with the same credentials).

Exit 57 when the database has migrations this code does not know (it is newer than
the code): deploy the newer version instead.

The embedded database of \`npm start\` (baton dev) migrates itself when it starts.

Environment: DATABASE_URL (required).`;

export async function main(argv: string[]): Promise<number> {
  parseCommand(argv, {}, usage, { max: 0 });
  const config = loadConfig();
  if (!config.databaseUrl) {
    throw new CliError('DATABASE_URL is not set (the embedded database of `npm start` migrates itself)', EXIT.usage);
  }
  const created = await ensureDatabase(config.databaseUrl);
  if (created) console.error(`created database "${created}" on ${redactUrl(config.databaseUrl)}`);
  const database = await openDatabase({ url: config.databaseUrl, poolSize: 1 });
  try {
    const result = await migrate(database.db);
    console.error(
      result.applied.length
        ? `applied ${result.applied.length} migration(s) to ${database.where}: ${result.applied.join(', ')}`
        : `${database.where} is up to date (${result.total} migration(s))`,
    );
    return 0;
  } catch (err) {
    if (err instanceof SchemaTooNewError) {
      console.error(`baton migrate: ${err.message}`);
      return 57;
    }
    throw err;
  } finally {
    await database.close();
  }
}

/** Creates the URL's database when the server says it does not exist; returns its name then. */
async function ensureDatabase(url: string): Promise<string | null> {
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    return null;
  } catch (err) {
    if ((err as { code?: string }).code !== SQLSTATE.invalidCatalogName) throw err;
  } finally {
    await probe.end().catch(() => {});
  }
  const server = new URL(url);
  const name = decodeURIComponent(server.pathname.slice(1));
  server.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query(`create database ${admin.escapeIdentifier(name)}`);
  } catch (err) {
    // Another migrator created it first: fine.
    if ((err as { code?: string }).code !== SQLSTATE.duplicateDatabase) throw err;
  } finally {
    await admin.end();
  }
  return name;
}
