import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes a new SQL migration into schema/migrations after a
// change to schema/tables.ts. Migrations are applied by `baton migrate`.
export default defineConfig({
  dialect: 'postgresql',
  schema: './schema/tables.ts',
  out: './schema/migrations',
  dbCredentials: { url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
});
