/**
 * `baton migrate`: applies schema/migrations to DATABASE_URL. The embedded database
 * (npm start) migrates itself at start; this verb never creates one.
 */
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { SchemaTooNewError, migrate } from '../../runtime/db/migrate.ts';
import { CliError, EXIT, parseCommand } from '../lib/cli.ts';

export const usage = 'usage: baton migrate';

export const help = `${usage}

Applies the schema migrations to the PostgreSQL database at DATABASE_URL, in one
transaction under an advisory lock (several migrators at once queue; through
PgBouncer too). Prints what it applied, or that the database is up to date.

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
