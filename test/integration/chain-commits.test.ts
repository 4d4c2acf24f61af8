/**
 * Chains in flight commit together: one statement carries many runs' commits, each run
 * claiming its next step or finishing, each fenced on its own lease. A run whose fence
 * fails in the batch is left exactly as it was; the others go through. Claims batch the same
 * way, and two claims of one run in one batch never both get the step. The rows of steps the
 * commits claimed open together too, each fenced on its own lease.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import * as v from 'valibot';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { claimStep } from '../../runtime/store/claim.ts';
import { openStepRows } from '../../runtime/store/step-rows.ts';
import { commitAndClaimMany } from '../../runtime/store/continue.ts';
import { commitShapes } from '../helpers/chain-commits.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';
import { statementsSent } from '../helpers/statements.ts';

const pair = defineAgent({
  name: 'pair',
  input: v.object({}),
  start: 'one',
  steps: { one: () => next('two'), two: () => done(null) },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(pair), tools: false, llm: 'offline', worker: false });
});
after(() => t.close());

const usage = { model: null, inputTokens: null, outputTokens: null, costUsd: null };

async function claimed(owner: string): Promise<string> {
  const id = await trigger(t.api, 'pair', {});
  assert.ok(await claimStep(t.p.db, { runId: id, function: 'pair', seq: 0, leaseOwner: owner, worker: 'w', leaseMs: 30_000 }));
  return id;
}

const shapes = commitShapes(() => t.p.db);

for (const [shape, commit] of shapes) test(`${shape}: a run claims its next step, a run finishes, a run whose lease is gone is left as it was`, async () => {
  const [going, ending, stale] = [await claimed('w/a'), await claimed('w/b'), await claimed('w/c')];
  const write = (runId: string, leaseOwner: string) => ({
    runId, seq: 0, attempt: 1, leaseOwner, kind: 'compute' as const, patch: { at: runId }, usage, step: 'one', worker: 'w', claimedAt: null,
  });
  const held = await commit([
    { ...write(going, 'w/a'), nextStep: 'two', snapshot: null, next: { leaseOwner: 'w/a2', worker: 'w', leaseMs: 30_000 } },
    { ...write(ending, 'w/b'), output: undefined, snapshot: { at: ending } },
    { ...write(stale, 'w/someone-else'), nextStep: 'two', snapshot: null, next: { leaseOwner: 'w/c2', worker: 'w', leaseMs: 30_000 } },
  ]);
  assert.deepEqual([...held.keys()].sort(), [going, ending].sort());

  const runs = await query<{ id: string; status: string; next_seq: number; lease_owner: string | null; claims: number; output_type: string | null; finished: boolean }>(
    t.p.db,
    sql`select id, status::text as status, next_seq, lease_owner, claims, jsonb_typeof(output) as output_type, finished_at is not null as finished
        from runs where id in (${going}, ${ending}, ${stale})`,
  );
  const by = new Map(runs.map((r) => [r.id, r]));
  assert.deepEqual(by.get(going), { id: going, status: 'running', next_seq: 1, lease_owner: 'w/a2', claims: 1, output_type: null, finished: false });
  // A run that returns nothing stores JSON null as its output, as a lone commit does.
  assert.deepEqual(by.get(ending), { id: ending, status: 'succeeded', next_seq: 1, lease_owner: null, claims: 0, output_type: 'null', finished: true });
  assert.deepEqual(by.get(stale), { id: stale, status: 'running', next_seq: 0, lease_owner: 'w/c', claims: 1, output_type: null, finished: false });

  const steps = await query<{ run_id: string; status: string; next_step: string | null; patch: unknown; attempt_status: string }>(
    t.p.db,
    sql`select s.run_id, s.status::text as status, s.next_step, s.patch, a.status::text as attempt_status
        from steps s join step_attempts a using (run_id, seq) where s.run_id in (${going}, ${ending}, ${stale}) and s.seq = 0`,
  );
  const step = new Map(steps.map((s) => [s.run_id, s]));
  assert.deepEqual(step.get(going), { run_id: going, status: 'succeeded', next_step: 'two', patch: { at: going }, attempt_status: 'succeeded' });
  assert.deepEqual(step.get(ending), { run_id: ending, status: 'succeeded', next_step: null, patch: { at: ending }, attempt_status: 'succeeded' });
  assert.deepEqual(step.get(stale), { run_id: stale, status: 'running', next_step: null, patch: null, attempt_status: 'running' });
  const [cp] = await query<{ n: number }>(t.p.db, sql`select count(*)::int as n from checkpoints where run_id = ${ending} and seq = 0`);
  assert.equal(cp.n, 1, 'the finished run keeps its final snapshot');
  const [none] = await query<{ n: number }>(t.p.db, sql`select count(*)::int as n from steps where run_id in (${going}, ${stale}) and seq = 1`);
  assert.equal(none.n, 0, 'the claimed next step gets its rows with its result, not before');
});

test('two claims of one run that land in one batch: exactly one holds the lease', async () => {
  // Four claims fill the batcher's slots; what arrives meanwhile goes to PostgreSQL as one batch.
  const others = await Promise.all([1, 2, 3, 4].map(() => trigger(t.api, 'pair', {})));
  const dup = await trigger(t.api, 'pair', {});
  const claim = (runId: string, leaseOwner: string) => claimStep(t.p.db, { runId, function: 'pair', seq: 0, leaseOwner, worker: 'w', leaseMs: 30_000 });
  const results = await Promise.all([
    ...others.map((id, i) => claim(id, `w/o${i}`)),
    claim(others[0], 'w/late'),
    claim(dup, 'w/first'),
    claim(dup, 'w/second'),
  ]);
  assert.ok(results.slice(0, 4).every(Boolean), 'the four others are claimed');
  assert.equal(results[4], null, 'a claim of a leased run in the batch gets nothing');
  const winners = results.slice(5).filter(Boolean);
  assert.equal(winners.length, 1, 'one of the two claims of the same run gets the step, never both');
  const [row] = await query<{ lease_owner: string; claims: number }>(t.p.db, sql`select lease_owner, claims from runs where id = ${dup}`);
  assert.equal(row.claims, 1);
  assert.equal(row.lease_owner, results[5] ? 'w/first' : 'w/second', 'the lease is held by the claim that got the step');
});

test('steps claimed by the commit before them open their rows together: one statement for many, each fenced on its own lease', async () => {
  const ids = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(() => claimed(`w/s${Math.random().toString(36).slice(2, 8)}`)));
  const owners = await query<{ id: string; lease_owner: string }>(t.p.db, sql`select id, lease_owner from runs where id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`);
  const ownerOf = new Map(owners.map((o) => [o.id, o.lease_owner]));
  // Each commit claims step one for a new owner; its rows are not written yet.
  const held = await commitAndClaimMany(
    t.p.db,
    ids.map((runId) => ({
      runId, seq: 0, attempt: 1, leaseOwner: ownerOf.get(runId) as string, kind: 'compute' as const, patch: {}, usage, step: 'one', worker: 'w', claimedAt: null,
      nextStep: 'two', snapshot: null, next: { leaseOwner: `${runId}/next`, worker: 'w', leaseMs: 30_000 },
    })),
  );
  assert.equal(held.size, 8);
  const sent = statementsSent(t.p.db);
  const open = (runId: string, leaseOwner: string) =>
    openStepRows(t.p.db, { runId, seq: 1, attempt: 1, step: 'two', leaseOwner, worker: 'w', claimedAt: held.get(runId) as string });
  // Four opens fill the batcher's slots; the four that arrive meanwhile go as one statement. The
  // last one's lease is someone else's: nothing opens for it.
  const opened = await Promise.all(ids.map((id, i) => open(id, i === 7 ? 'w/intruder' : `${id}/next`))).finally(sent.stop);
  assert.deepEqual(opened, [true, true, true, true, true, true, true, false]);
  assert.ok(sent.names.length <= 5 && sent.names.every((n) => n === 'baton_open_step_rows_many'), sent.names.join(', '));
  const rows = await query<{ run_id: string; status: string; attempt_status: string }>(
    t.p.db,
    sql`select s.run_id, s.status::text as status, a.status::text as attempt_status
        from steps s join step_attempts a using (run_id, seq) where s.seq = 1 and s.run_id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`,
  );
  assert.deepEqual(new Set(rows.map((r) => r.run_id)), new Set(ids.slice(0, 7)));
  assert.ok(rows.every((r) => r.status === 'running' && r.attempt_status === 'running'));
});
