/**
 * The step protocol's hot statements run prepared (parsed and planned once per
 * connection), and still answer correctly through a pooler in transaction mode that
 * does not carry prepared statements from one server connection to the next.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { type Database, hotStatement, openDatabase, query, queryPrepared } from '../../runtime/db/connect.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type PgBouncer, pgBouncerBinary, startPgBouncer } from '../helpers/pgbouncer.ts';

const probe = (n: number) => sql`select ${n}::int * 2 as doubled, now() as at, '{"a":[1]}'::jsonb as doc`;

/** A statement built once, with placeholders; `builds` counts how often its SQL was built. */
function hotProbe(name: string) {
  const counter = { builds: 0 };
  const run = hotStatement(name, (v: { n: number; tag: string | null }) => {
    counter.builds++;
    return sql`select ${v.n}::int * 2 as doubled, ${v.tag}::text as tag, now() as at`;
  });
  return { run, counter };
}

describe('prepared statements', () => {
  let scratch: TestDatabase;
  before(async () => {
    scratch = await createTestDatabase({ open: false });
  });
  after(async () => {
    await scratch?.drop();
  });

  test('directly on PostgreSQL: prepared once per connection, same answers as an unprepared query', async () => {
    // Straight to the server, even when the suite runs through PgBouncer.
    const u = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
    u.pathname = `/${scratch.name}`;
    const database = await openDatabase({ url: u.toString(), poolSize: 1 });
    try {
      const plain = await query<{ doubled: number; at: unknown; doc: unknown }>(database.db, probe(21));
      const first = await queryPrepared<{ doubled: number; at: unknown; doc: unknown }>(database.db, 'baton_test_probe', probe(21));
      const again = await queryPrepared<{ doubled: number }>(database.db, 'baton_test_probe', probe(4));
      assert.equal(first[0].doubled, 42);
      assert.equal(again[0].doubled, 8);
      // Rows read as Drizzle reads them: timestamps stay strings, jsonb is parsed.
      assert.equal(typeof first[0].at, typeof plain[0].at);
      assert.deepEqual(first[0].doc, plain[0].doc);
      // A hot statement: its text built once, each call only its values.
      const { run: hot, counter } = hotProbe('baton_test_hot');
      const answers = [];
      for (const [n, tag] of [[21, 'a'], [4, null], [5, 'b']] as const) answers.push((await hot<{ doubled: number; tag: string | null; at: unknown }>(database.db, { n, tag }))[0]);
      assert.deepEqual(answers.map((a) => [a.doubled, a.tag]), [[42, 'a'], [8, null], [10, 'b']]);
      assert.equal(typeof answers[0].at, typeof plain[0].at);
      assert.equal(counter.builds, 1, 'the SQL was built once');
      const prepared = await query<{ name: string }>(database.db, sql`select name from pg_prepared_statements`);
      assert.ok(['baton_test_probe', 'baton_test_hot'].every((name) => prepared.some((r) => r.name === name)),
        `the connection holds the prepared statement: ${JSON.stringify(prepared)}`,
      );
    } finally {
      await database.close();
    }
  });

  const skip = pgBouncerBinary() ? false : 'pgbouncer is not installed (apt-get install -y pgbouncer)';
  test('through PgBouncer in transaction mode: every call answers, with more clients than server connections', { skip }, async () => {
    let bouncer: PgBouncer | undefined;
    let database: Database | undefined;
    try {
      bouncer = await startPgBouncer(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', { poolSize: 2 });
      const u = new URL(`postgres://postgres@127.0.0.1:${bouncer.port}/${scratch.name}`);
      database = await openDatabase({ url: u.toString(), poolSize: 6 });
      const db = database.db;
      const { run: hot } = hotProbe('baton_test_hot_bouncer');
      const hotAnswers = await Promise.all(Array.from({ length: 30 }, (_, i) => hot<{ doubled: number; tag: string }>(db, { n: i, tag: `t${i}` }).then((rows) => `${rows[0].doubled}/${rows[0].tag}`)));
      assert.deepEqual(hotAnswers, Array.from({ length: 30 }, (_, i) => `${i * 2}/t${i}`));
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            queryPrepared<{ doubled: number }>(db, i % 2 ? 'baton_test_odd' : 'baton_test_even', probe(i)).then((rows) => rows[0].doubled),
          ),
        );
        assert.deepEqual(
          answers,
          Array.from({ length: 30 }, (_, i) => i * 2),
        );
      }
    } finally {
      await database?.close();
      await bouncer?.stop();
    }
  });
});
