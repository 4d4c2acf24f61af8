/**
 * Heartbeats: a process sends one statement per beat for all its steps in flight
 * (not one per step), every step keeps its lease for as long as it runs, and a step
 * whose lease was taken away learns it at the next beat, without disturbing the rest;
 * heartbeats have a connection of their own, so a pool kept busy by other statements
 * never lets a live lease lapse.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type SQL, sql } from 'drizzle-orm';
import * as v from 'valibot';
import { PgDialect } from 'drizzle-orm/pg-core';
import { type Db, openDatabase, query } from '../../runtime/db/connect.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Platform } from '../../runtime/platform.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { releaseLease } from '../../runtime/store/lease.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

// A beat may come up to three quarters of a lease late (900 ms) before the lease lapses: room for a busy machine.
const LEASE_MS = 1200;
const HEARTBEAT_MS = 300;
const STEPS = 12;
/** The steps' pool (the test platform's database handle opens 4 connections). */
const POOL = 4;
/** Long enough for several beats and for an unrenewed lease to run out twice over. */
const STEP_MS = 4 * LEASE_MS;

const slow = defineAgent({
  name: 'slow',
  input: v.object({}),
  start: 'wait',
  steps: {
    wait: async (ctx) => {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, STEP_MS);
        ctx.abortSignal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(ctx.abortSignal.reason as Error);
        });
      });
      return done('waited');
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(slow),
    tools: false,
    llm: 'offline',
    worker: false,
    env: { BATON_LEASE_MS: String(LEASE_MS), BATON_HEARTBEAT_MS: String(HEARTBEAT_MS) },
  });
});
after(() => t.close());

/** The platform, with every statement it sends to PostgreSQL (steps' and heartbeats' connections) recorded. */
function recording(p: Platform): { p: Platform; statements: string[] } {
  const statements: string[] = [];
  const dialect = new PgDialect();
  const record = (db: Db) =>
    new Proxy(db, {
      get(target, key, receiver) {
        if (key !== 'execute') return Reflect.get(target, key, receiver) as unknown;
        return (statement: SQL) => {
          statements.push(dialect.sqlToQuery(statement).sql);
          return target.execute(statement);
        };
      },
    }) as Db;
  return { p: { ...p, db: record(p.db), database: { ...p.database, db: record(p.database.db), leases: record(p.database.leases) } }, statements };
}

test(`${STEPS} steps in flight in one process: one heartbeat statement per beat, every lease held throughout`, async () => {
  const { p, statements } = recording(t.p);
  const ids = await Promise.all(Array.from({ length: STEPS }, () => trigger(t.api, 'slow', {})));
  const started = Date.now();
  const outcomes = await Promise.all(ids.map((runId) => executeStep(p, 'slow', { runId, seq: 0 }, { worker: 'w1' })));
  const elapsed = Date.now() - started;
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ids.map(() => 'committed'),
    'no step lost its lease',
  );
  const beats = statements.filter((s) => /set lease_expires_at = now\(\)/.test(s)).length;
  const perStep = Math.floor(elapsed / HEARTBEAT_MS);
  assert.ok(beats >= 2, `the leases were extended (${beats} heartbeat statements)`);
  assert.ok(beats <= perStep + 2, `${beats} heartbeat statements for ${STEPS} steps over ${elapsed} ms: one per beat (about ${perStep}), not one per step and beat`);
});

test('a step whose lease is taken away is told at the next beat; the others go on', async () => {
  const ids = await Promise.all(Array.from({ length: 3 }, () => trigger(t.api, 'slow', {})));
  const running = ids.map((runId) => executeStep(t.p, 'slow', { runId, seq: 0 }, { worker: 'w2' }));
  // Once the first run is leased, take its lease away (as a cancelled or taken-over run would lose it).
  const victim = ids[0];
  for (let i = 0; i < 100; i++) {
    const [row] = await query<{ lease_owner: string | null }>(t.p.db, sql`select lease_owner from runs where id = ${victim}`);
    if (row?.lease_owner) {
      assert.ok(await releaseLease(t.p.db, victim, row.lease_owner));
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const outcomes = await Promise.all(running);
  assert.equal(outcomes[0].status, 'fenced', 'the step that lost its lease was aborted');
  assert.deepEqual(
    outcomes.slice(1).map((o) => o.status),
    ['committed', 'committed'],
  );
});

test("a busy pool does not hold heartbeats back: every connection taken by other statements, the lease still holds", async () => {
  const runId = await trigger(t.api, 'slow', {});
  const running = executeStep(t.p, 'slow', { runId, seq: 0 }, { worker: 'w3' });
  const other = await openDatabase({ url: t.db.url, poolSize: 1 });
  try {
    for (let i = 0; i < 100; i++) {
      const [row] = await query<{ lease_owner: string | null }>(other.db, sql`select lease_owner from runs where id = ${runId}`);
      if (row?.lease_owner) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Every connection of the steps' pool busy for two leases (as a thousand steps' claims and commits would keep it;
    // under the pool's 3 s wait for a connection, which the hog that queues behind the others must not reach).
    const hogMs = 2 * LEASE_MS;
    const hogs = Array.from({ length: POOL }, () => query(t.p.db, sql`select pg_sleep(${hogMs / 1000})`));
    const stolen: number[] = [];
    const until = Date.now() + hogMs;
    for (let i = 0; Date.now() < until; i++) {
      const thief = await claimStep(other.db, { runId, function: 'slow', seq: 0, leaseOwner: `thief/${i}`, worker: 'thief', leaseMs: LEASE_MS });
      if (thief) stolen.push(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all(hogs);
    assert.deepEqual(stolen, [], 'nobody could claim the step while its worker lived');
    assert.equal((await running).status, 'committed');
  } finally {
    await other.close();
  }
});
