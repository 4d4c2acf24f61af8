/**
 * Every Baton pod reaches PostgreSQL through the CNPG Pooler: PgBouncer in transaction
 * mode, where a client's consecutive transactions may run on different server
 * connections. Session state (SET, LISTEN, session advisory locks, startup
 * parameters) would silently break there. This runs the real step protocol — migrate
 * (advisory xact lock), API create and reads, claim, heartbeat, commit, retry with
 * backoff, sweep (advisory xact lock) — through a real PgBouncer in transaction mode
 * with a pool far smaller than the number of concurrent steps, against real Redis.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type Platform, createPlatform } from '../../runtime/platform.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { sweep } from '../../runtime/store/sweep.ts';
import { type Worker, createWorker } from '../../runtime/worker/worker.ts';
import { type PgBouncer, pgBouncerBinary, startPgBouncer } from '../helpers/pgbouncer.ts';
import { REDIS_URL, SERVER_URL, type ScratchDatabase, databaseUrl, dropPrefix, scratchDatabase, testPrefix, until } from './support.ts';

const POOL_SIZE = 2;
const RUNS = 12;

/** Each step is one short call; `slow` outlives a few heartbeats; `flaky` fails its first attempt. */
const agent = defineAgent({
  name: 'pooled',
  input: v.object({ n: v.number() }),
  start: 'first',
  steps: {
    first: async () => next('slow', { started: true }),
    slow: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return next('flaky', { waited: ctx.input.n });
    },
    flaky: async (ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails on purpose');
      return done({ n: ctx.input.n, attempt: ctx.attempt });
    },
  },
});

const skip = pgBouncerBinary() ? false : 'pgbouncer is not installed (apt-get install -y pgbouncer); the pooler test needs a real PgBouncer';

describe('the runtime through PgBouncer in transaction mode', { skip, timeout: 60_000 }, () => {
  let bouncer: PgBouncer;
  let db: ScratchDatabase & { migrated: string[] };
  let bounced: string;
  let p: Platform;
  let worker: Worker;
  const prefix = testPrefix();

  before(async () => {
    bouncer = await startPgBouncer(SERVER_URL, { poolSize: POOL_SIZE });
    const through = async (url: string) => {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(bouncer.port);
      return u.toString();
    };
    db = await scratchDatabase({ migrateUrl: through });
    bounced = await through(db.url);
    const config = loadConfig({
      DATABASE_URL: bounced,
      REDIS_URL,
      BATON_REDIS_PREFIX: prefix,
      BATON_AUTH: 'off',
      BATON_LOG_LEVEL: 'silent',
      BATON_LEASE_MS: '300',
      BATON_HEARTBEAT_MS: '60',
      BATON_RETRY_BASE_MS: '20',
      BATON_RETRY_MAX_MS: '50',
      BATON_SWEEP_AFTER_MS: '500',
      BATON_CONCURRENCY: '8',
    });
    p = await createPlatform(config, { functions: registryOf(agent) });
    worker = createWorker(p);
    await worker.start();
  });

  after(async () => {
    await worker?.stop(2000);
    await p?.close();
    await db?.drop();
    await bouncer?.stop();
    await dropPrefix(prefix);
  });

  test('the bouncer really pools by transaction: two clients share one server connection', async () => {
    // A second pool of size 1 for this check only, so the two clients must share.
    const single = await startPgBouncer(SERVER_URL, { poolSize: 1 });
    const url = new URL(databaseUrl(db.name));
    url.hostname = '127.0.0.1';
    url.port = String(single.port);
    const a = new pg.Client({ connectionString: url.toString() });
    const b = new pg.Client({ connectionString: url.toString() });
    try {
      await a.connect();
      await b.connect();
      const pidA = (await a.query('select pg_backend_pid() as pid')).rows[0].pid;
      const pidB = (await b.query('select pg_backend_pid() as pid')).rows[0].pid;
      assert.equal(pidA, pidB, 'in session mode the second client would need its own server connection');
    } finally {
      await a.end();
      await b.end();
      await single.stop();
    }
  });

  test('migrations applied through the bouncer (advisory xact lock), and re-running them is a no-op', async () => {
    assert.ok(db.migrated.length > 0);
    const { migrate } = await import('../../runtime/db/migrate.ts');
    const again = await Promise.all([migrate(p.db), migrate(p.db), migrate(p.db)]);
    for (const r of again) assert.deepEqual(r.applied, []);
  });

  test(`${RUNS} runs (claim, heartbeat, commit, retry) complete with ${POOL_SIZE} server connections`, async () => {
    const api = createApi(p);
    const ids: string[] = [];
    for (let n = 0; n < RUNS; n++) {
      const res = await api.request('/v1/functions/pooled/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) });
      assert.equal(res.status, 202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    const finished = async () => {
      for (const id of ids) {
        const r = await getRunWithSteps(p.db, id);
        if (r?.run.status !== 'succeeded') {
          assert.notEqual(r?.run.status, 'failed', JSON.stringify(r?.run.error));
          return false;
        }
      }
      return true;
    };
    await until(finished, { timeoutMs: 40_000, what: 'every run to succeed' }).done;
    for (const [n, id] of ids.entries()) {
      const res = await api.request(`/v1/runs/${id}`);
      assert.equal(res.status, 200);
      const view = (await res.json()) as { status: string; output: { n: number; attempt: number }; steps: Array<{ name: string; status: string }> };
      assert.equal(view.status, 'succeeded');
      assert.deepEqual(view.output, { n, attempt: 2 });
      assert.deepEqual(view.steps.map((s) => s.name), ['first', 'slow', 'flaky']);
    }
    const list = await api.request('/v1/runs?function=pooled&limit=100');
    assert.equal(((await list.json()) as { runs: unknown[] }).runs.length, RUNS);
  });

  test('concurrent sweeps take the transaction-scoped advisory lock one at a time', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => sweep(p.db, { staleMs: 60_000 })));
    for (const r of results) assert.ok(r === null || Array.isArray(r));
    assert.ok(results.some((r) => Array.isArray(r)), 'at least one sweeper got the lock');
  });
});

test('the runtime issues no session-level SQL (static check of every statement it sends)', () => {
  const root = path.resolve(import.meta.dirname, '../../runtime');
  const offences: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory()) walk(file);
      else if (file.endsWith('.ts') && !file.endsWith('.test.ts')) {
        const code = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
        const rules: Array<[RegExp, string]> = [
          [/pg_(try_)?advisory_lock(_shared)?\s*\(/i, 'session advisory lock'],
          [/[`'"]\s*listen\s/i, 'LISTEN'],
          [/[`'"]\s*set\s+(?!local\b)(session\s+)?[a-z_]+\s*(=|to)/i, 'SET without LOCAL'],
          [/statement_timeout|options\s*:\s*['"]-c/i, 'startup parameter'],
        ];
        for (const [re, what] of rules) if (re.test(code)) offences.push(`${path.relative(root, file)}: ${what}`);
      }
    }
  };
  walk(root);
  assert.deepEqual(offences, []);
});
