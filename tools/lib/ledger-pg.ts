/**
 * The ledger in PostgreSQL (BATON_TOOL_LEDGER_URL): a database of the tool servers'
 * own, never the runtime's (own credentials too). `?schema=name` in the URL puts the
 * tables in that schema (default `public`); it is stripped before connecting, so the
 * URL also works through PgBouncer in transaction mode (no startup parameters, no
 * session state: every statement stands alone).
 *
 * Table `tool_ledger` (README "The tool ledger"; it is the audit of side effects):
 *   key          the idempotency key `run_id:seq` (primary key: the atomic reservation)
 *   server, tool what was called;  args_digest  sha256 of its canonical arguments
 *   tenant       whose run it was
 *   outcome      pending (reserved, in progress) | ok | error
 *   result       the side effect's result (jsonb), error  why it failed
 *   holder       the replica (host:pid:random) that holds or held the reservation
 *   lease_until  a pending row whose lease passed is the reservation of a dead holder
 *   attempts     holders that tried (1 unless taken over); deliveries  calls that arrived
 *   reserved_at, finished_at
 * All times are the database's clock, so replicas' clocks do not matter.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { IdempotencyConflict, type Ledger, createMemoryLedger, LedgerBusy, type LedgerEntry, type LedgerOutcome, type SideEffect, entryConflicts } from './ledger.ts';

export const DEFAULT_LEASE_MS = 15_000;
export const DEFAULT_WAIT_MS = 20_000;
const POLL_MS = 50;

export interface PgLedgerOptions {
  url: string;
  /** How long a reservation stays valid without a heartbeat (BATON_TOOL_LEDGER_LEASE_MS). */
  leaseMs?: number;
  /** How long a replica waits for another's result (BATON_TOOL_LEDGER_WAIT_MS). */
  waitMs?: number;
  holder?: string;
  /** More DDL to run in the same schema (the review server's comments). */
  extraDdl?: string[];
}

export interface PgLedger extends Ledger {
  /** The pool, for a server's own tables in the ledger database (review comments). */
  pool: pg.Pool;
  /** The schema-qualified name of a table in the ledger's schema. */
  table(name: string): string;
  /** Creates the tables if missing (idempotent; serialised by an advisory lock). */
  prepare(): Promise<void>;
}

interface Row {
  key: string;
  server: string;
  tool: string;
  args_digest: string;
  outcome: 'pending' | 'ok' | 'error';
  result: unknown;
  expired: boolean;
}

const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`BATON_TOOL_LEDGER_URL: schema "${name}" must be a plain lower-case identifier`);
  return `"${name}"`;
};

/** Splits `?schema=` off the URL (pg would send unknown parameters as startup options). */
export function ledgerTarget(url: string): { connectionString: string; schema: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  u.searchParams.delete('schema');
  return { connectionString: u.toString(), schema };
}

export function createPgLedger(opts: PgLedgerOptions): PgLedger {
  const { connectionString, schema } = ledgerTarget(opts.url);
  const s = ident(schema);
  const table = (name: string) => `${s}.${ident(name)}`;
  const T = table('tool_ledger');
  const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const holder = opts.holder ?? `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
  const pool = new pg.Pool({ connectionString, max: 5, idleTimeoutMillis: 30_000 });
  pool.on('error', () => {}); // an idle client's error; the next query reports its own

  const ddl = [
    `create schema if not exists ${s}`,
    `create table if not exists ${T} (
      key text primary key,
      server text not null,
      tool text not null,
      args_digest text not null,
      tenant text,
      outcome text not null check (outcome in ('pending', 'ok', 'error')),
      result jsonb,
      error text,
      holder text not null,
      lease_until timestamptz not null,
      attempts integer not null default 1,
      deliveries integer not null default 1,
      reserved_at timestamptz not null default now(),
      finished_at timestamptz
    )`,
    `create index if not exists tool_ledger_reserved_at on ${T} (reserved_at)`,
    ...(opts.extraDdl ?? []).map((d) => d.replaceAll('{schema}', s)),
  ];

  let prepared: Promise<void> | null = null;
  const prepare = () =>
    (prepared ??= (async () => {
      const client = await pool.connect();
      try {
        await client.query('begin');
        // Concurrent `create ... if not exists` can still collide on the catalog; one at a time.
        await client.query(`select pg_advisory_xact_lock(hashtext('baton_tool_ledger'))`);
        // The ledger is the tool servers' own: never beside the runtime's tables (nor with its credentials).
        const { rows } = await client.query<{ runtime: boolean }>(
          `select to_regclass($1) is not null and to_regclass($2) is not null as runtime`,
          [`${s}.runs`, `${s}.checkpoints`],
        );
        if (rows[0]?.runtime) {
          throw new Error(`BATON_TOOL_LEDGER_URL points at the runtime's tables (schema ${schema} holds runs and checkpoints); give the tool ledger a database or schema of its own, with credentials of its own`);
        }
        for (const statement of ddl) await client.query(statement);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback').catch(() => {});
        prepared = null;
        throw err;
      } finally {
        client.release();
      }
    })());

  const q = async <R extends pg.QueryResultRow>(text: string, values: unknown[]) => {
    await prepare();
    return (await pool.query<R>(text, values)).rows;
  };

  const RETURNING = `key, server, tool, args_digest, outcome, result, lease_until < now() as expired`;

  async function hold<T>(entry: LedgerEntry, effect: SideEffect<T>, fresh: boolean): Promise<LedgerOutcome<T>> {
    const beat = setInterval(() => {
      q(`update ${T} set lease_until = now() + make_interval(secs => $3 / 1000.0) where key = $1 and holder = $2 and outcome = 'pending'`, [
        entry.key,
        holder,
        leaseMs,
      ]).catch(() => {});
    }, Math.max(50, Math.floor(leaseMs / 3)));
    beat.unref();
    try {
      let replayed = false;
      let result: T | null = fresh ? null : await effect.recover();
      if (result !== null) replayed = true;
      else result = await effect.act();
      await q(`update ${T} set outcome = 'ok', result = $3::jsonb, error = null, finished_at = now() where key = $1 and holder = $2`, [
        entry.key,
        holder,
        JSON.stringify(result ?? null),
      ]);
      return { result, replayed };
    } catch (err) {
      const message = String((err as Error).message ?? err).slice(0, 2000);
      await q(`update ${T} set outcome = 'error', error = $3, finished_at = now(), lease_until = now() where key = $1 and holder = $2 and outcome = 'pending'`, [
        entry.key,
        holder,
        message,
      ]).catch(() => {});
      throw err;
    } finally {
      clearInterval(beat);
    }
  }

  async function once<T>(entry: LedgerEntry, effect: SideEffect<T>): Promise<LedgerOutcome<T>> {
    const started = Date.now();
    const [reserved] = await q<Row>(
      `insert into ${T} (key, server, tool, args_digest, tenant, outcome, holder, lease_until)
       values ($1, $2, $3, $4, $5, 'pending', $6, now() + make_interval(secs => $7 / 1000.0))
       on conflict (key) do nothing
       returning ${RETURNING}`,
      [entry.key, entry.server, entry.tool, entry.argsDigest, entry.tenant, holder, leaseMs],
    );
    if (reserved) return hold(entry, effect, true);
    let [row] = await q<Row>(`update ${T} set deliveries = deliveries + 1 where key = $1 returning ${RETURNING}`, [entry.key]);
    for (;;) {
      if (!row) {
        // Deleted under us (an operator cleaning up): start over as a new reservation.
        return once(entry, effect);
      }
      if (entryConflicts(entry, { server: row.server, tool: row.tool, argsDigest: row.args_digest })) {
        throw new IdempotencyConflict(entry, { server: row.server, tool: row.tool, argsDigest: row.args_digest });
      }
      if (row.outcome === 'ok') return { result: row.result as T, replayed: true };
      if (row.outcome === 'error' || row.expired) {
        // The holder failed or died: take the reservation over, if nobody else just did.
        const [taken] = await q<Row>(
          `update ${T} set outcome = 'pending', holder = $2, attempts = attempts + 1, error = null, finished_at = null,
                  lease_until = now() + make_interval(secs => $3 / 1000.0)
           where key = $1 and (outcome = 'error' or (outcome = 'pending' and lease_until < now()))
           returning ${RETURNING}`,
          [entry.key, holder, leaseMs],
        );
        if (taken) return hold(entry, effect, false);
      } else if (Date.now() - started >= waitMs) {
        throw new LedgerBusy(entry.key, Date.now() - started);
      } else {
        await sleep(POLL_MS);
      }
      [row] = await q<Row>(`select ${RETURNING} from ${T} where key = $1`, [entry.key]);
    }
  }

  return {
    kind: 'postgres',
    pool,
    table,
    prepare,
    once,
    async problem() {
      try {
        await q('select 1', []);
        return null;
      } catch (err) {
        return `the tool ledger database is unreachable: ${(err as Error).message}`;
      }
    },
    close: () => pool.end(),
  };
}

/** The ledger this process's environment names: PostgreSQL with BATON_TOOL_LEDGER_URL, else memory (and a loud warning). */
export function ledgerFromEnv(server: string, env: NodeJS.ProcessEnv = process.env, extraDdl: string[] = []): Ledger {
  const url = env.BATON_TOOL_LEDGER_URL;
  if (!url) {
    process.stderr.write(
      `\n${server}: WARNING: no BATON_TOOL_LEDGER_URL: side effects are deduplicated in this process only. ` +
        'Run one replica, or give every replica the same ledger database.\n\n',
    );
    return createMemoryLedger();
  }
  const ms = (name: string, fallback: number) => {
    const n = Number(env[name] ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of milliseconds`);
    return n;
  };
  return createPgLedger({ url, leaseMs: ms('BATON_TOOL_LEDGER_LEASE_MS', DEFAULT_LEASE_MS), waitMs: ms('BATON_TOOL_LEDGER_WAIT_MS', DEFAULT_WAIT_MS), extraDdl });
}
