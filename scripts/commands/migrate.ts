/** `baton migrate`: applies schema/migrations to DATABASE_URL (or the embedded database under .baton/). */
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase } from '../../runtime/db/connect.ts';
import { SchemaTooNewError, migrate } from '../../runtime/db/migrate.ts';

export async function main(): Promise<number> {
  const config = loadConfig();
  const database = await openDatabase({ url: config.databaseUrl, dataDir: `${config.dataDir}/pgdata` });
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
