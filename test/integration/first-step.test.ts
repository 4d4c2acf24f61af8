/**
 * A quick first step: a fresh run's first wake-up, delivered for the first time, runs on a
 * read and is claimed by its commit (one write instead of a claim and a commit). The commit
 * writes nothing unless the run is still a fresh run at its first step; a step that makes an
 * outside call is claimed before the call goes out; a reclaimed message is always claimed
 * first; a run that changed under the step is claimed the usual way, and never committed twice.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import * as v from 'valibot';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import type { ClaimedStep } from '../../runtime/store/claim.ts';
import { type FirstStepInput, readFirstStepAlone, readFirstSteps } from '../../runtime/store/first-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import { commitShapes } from '../helpers/chain-commits.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor } from '../helpers/platform.ts';
import { statementsSent } from '../helpers/statements.ts';

const pair = defineAgent({
  name: 'pair',
  input: v.object({ n: v.number() }),
  start: 'one',
  steps: { one: (ctx) => next('two', { seen: ctx.input.n }), two: (ctx) => done({ seen: ctx.state.seen }) },
});
const asks = defineAgent({
  name: 'asks',
  input: v.object({}),
  start: 'ask',
  steps: { ask: async (ctx) => done((await ctx.llm.generateText({ prompt: 'hi' })).text) },
});
// Its call may wait for its claim longer than its timeout: the timeout counts the step's own time.
const patient = defineAgent({
  name: 'patient',
  input: v.object({}),
  start: 'ask',
  steps: { ask: { timeoutMs: 1000, maxAttempts: 1, run: async (ctx) => done((await ctx.llm.generateText({ prompt: 'hi' })).text) } },
});
// Its body lets another worker take the run before it returns.
let whileRunning: (runId: string) => Promise<void> = async () => {};
const overtaken = defineAgent({
  name: 'overtaken',
  input: v.object({}),
  start: 'go',
  steps: {
    go: async (ctx) => {
      await whileRunning(ctx.runId);
      return done('mine');
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(pair, asks, patient, overtaken), tools: false, llm: { delayMs: 300 }, worker: false });
});
after(() => t.close());

const run = (fn: string, runId: string, firstDelivery: boolean) =>
  executeStep(t.p, fn, { runId, seq: 0 }, { worker: 'w1', continueInProcess: true, firstDelivery });

interface RunRow {
  status: string;
  lease_owner: string | null;
  output: unknown;
}
const runRow = async (id: string) =>
  (await query<RunRow>(t.p.db, sql`select status::text as status, lease_owner, output from runs where id = ${id}`))[0];
const stepRows = (id: string) =>
  query<{ seq: number; name: string; status: string; worker: string; attempt: number; attempts: number; ordered: boolean }>(
    t.p.db,
    sql`select s.seq, s.name, s.status::text as status, s.worker, s.attempt,
          (select count(*)::int from step_attempts a where a.run_id = s.run_id and a.seq = s.seq) as attempts,
          s.started_at <= s.finished_at as ordered
        from steps s where s.run_id = ${id} order by s.seq`,
  );

test('a fresh run first delivered: its first step runs on a read and its commit claims it, no claim statement', async () => {
  const id = await trigger(t.api, 'pair', { n: 7 });
  const sent = statementsSent(t.p.db);
  const outcome = await run('pair', id, true).finally(sent.stop);
  assert.equal(outcome.status, 'committed');
  assert.ok(!sent.names.includes('baton_claim_many'), `no claim: ${sent.names.join(', ')}`);
  assert.deepEqual(sent.names, ['baton_read_first_step', 'baton_commit_claim_one_unclaimed', 'baton_commit_claim_one']);
  assert.deepEqual(await runRow(id), { status: 'succeeded', lease_owner: null, output: { seen: 7 } });
  assert.deepEqual(
    (await stepRows(id)).map((s) => [s.seq, s.name, s.status, s.worker, s.attempt, s.attempts, s.ordered]),
    [
      [0, 'one', 'succeeded', 'w1', 1, 1, true],
      [1, 'two', 'succeeded', 'w1', 1, 1, true],
    ],
  );
});

test('a reclaimed message is claimed before its step runs (a step that killed its worker counts towards a crash loop)', async () => {
  const id = await trigger(t.api, 'pair', { n: 1 });
  const sent = statementsSent(t.p.db);
  const outcome = await run('pair', id, false).finally(sent.stop);
  assert.equal(outcome.status, 'committed');
  assert.equal(sent.names[0], 'baton_claim_many');
  assert.ok(!sent.names.some((n) => n.startsWith('baton_read_first_step')));
});

test('a first step that calls a model is claimed before the call goes out; later runs of the function are claimed at once', async () => {
  const id = await trigger(t.api, 'asks', {});
  const sent = statementsSent(t.p.db);
  const outcome = run('asks', id, true);
  // While the model thinks, the run is leased and its step shows as running.
  await waitFor(() => (t.llm?.inflight ?? 0) > 0, 'the model call');
  const during = await runRow(id);
  assert.equal(during.status, 'running');
  assert.match(during.lease_owner ?? '', /^w1\//);
  assert.deepEqual((await stepRows(id)).map((s) => [s.name, s.status]), [['ask', 'running']]);
  assert.equal((await outcome).status, 'committed');
  assert.deepEqual(sent.names.slice(0, 2), ['baton_read_first_step', 'baton_claim_many']);

  const second = await trigger(t.api, 'asks', {});
  sent.names.length = 0;
  assert.equal((await run('asks', second, true).finally(sent.stop)).status, 'committed');
  assert.equal(sent.names[0], 'baton_claim_many', 'no read first: this function calls out');
  assert.equal((await runRow(second)).status, 'succeeded');
});

test('a run taken by another worker while its unclaimed first step ran: nothing is committed, the step is claimed the usual way', async () => {
  const id = await trigger(t.api, 'overtaken', {});
  whileRunning = async (runId) => {
    await query(t.p.db, sql`update runs set status = 'running', lease_owner = 'other/1', lease_expires_at = now() + interval '1 minute', claims = 1 where id = ${runId}`);
  };
  const outcome = await run('overtaken', id, true).finally(() => (whileRunning = async () => {}));
  assert.equal(outcome.status, 'skipped', JSON.stringify(outcome));
  assert.deepEqual(await runRow(id), { status: 'running', lease_owner: 'other/1', output: null });
  assert.deepEqual(await stepRows(id), []);
});

const readShapes: Array<[string, (c: FirstStepInput) => Promise<ClaimedStep | null>]> = [
  ['alone', (c) => readFirstStepAlone(t.p.db, c)],
  // With a second run that does not exist, so the statement really reads a batch.
  ['batched', async (c) => (await readFirstSteps(t.p.db, [c, { runId: '00000000-0000-7000-8000-000000000000', function: c.function }])).get(c.runId) ?? null],
];

for (const [shape, read] of readShapes) test(`${shape}, the read of a first step finds only a fresh run at seq 0 of its function`, async () => {
  const [fresh, leased, cancelled, signalled, moved] = await Promise.all([5, 6, 7, 8, 9].map((n) => trigger(t.api, 'pair', { n })));
  await query(t.p.db, sql`update runs set status = 'running', lease_owner = 'x/1', lease_expires_at = now() + interval '1 minute', claims = 1 where id = ${leased}`);
  await query(t.p.db, sql`update runs set status = 'cancelled', finished_at = now() where id = ${cancelled}`);
  await query(t.p.db, sql`update runs set signal = '{"name":"go"}'::jsonb where id = ${signalled}`);
  await query(t.p.db, sql`update runs set next_seq = 1, next_step = 'two' where id = ${moved}`);
  const found = await read({ runId: fresh, function: 'pair' });
  assert.ok(found);
  const { runId, function: fn, step, seq, attempt, attemptBase, input, state, signal, crashLoop, branch, branches } = found;
  assert.deepEqual(
    { runId, fn, step, seq, attempt, attemptBase, input, state, signal, crashLoop, branch, branches },
    { runId: fresh, fn: 'pair', step: 'one', seq: 0, attempt: 1, attemptBase: 0, input: { n: 5 }, state: {}, signal: undefined, crashLoop: null, branch: undefined, branches: undefined },
  );
  assert.equal(await read({ runId: fresh, function: 'asks' }), null, 'a run of another function');
  for (const [what, id] of [['leased', leased], ['cancelled', cancelled], ['signalled', signalled], ['past seq 0', moved]]) {
    assert.equal(await read({ runId: id, function: 'pair' }), null, what);
  }
});

const shapes = commitShapes(() => t.p.db);

for (const [shape, commit] of shapes) test(`${shape}, the commit of an unclaimed first step is fenced on the run being still fresh: cancelled, leased or moved on, nothing is written`, async () => {
  const usage = { model: null, inputTokens: null, outputTokens: null, costUsd: null };
  const fresh = await trigger(t.api, 'pair', { n: 1 });
  const cancelled = await trigger(t.api, 'pair', { n: 2 });
  const leased = await trigger(t.api, 'pair', { n: 3 });
  await query(t.p.db, sql`update runs set status = 'cancelled', finished_at = now() where id = ${cancelled}`);
  await query(t.p.db, sql`update runs set status = 'running', lease_owner = 'x/1', lease_expires_at = now() + interval '1 minute', claims = 1 where id = ${leased}`);
  const write = (runId: string) => ({
    runId, seq: 0, attempt: 1, leaseOwner: 'w1/none', kind: 'compute' as const, patch: { seen: 1 }, usage, step: 'one', worker: 'w1', claimedAt: null,
    nextStep: 'two', snapshot: null, next: { leaseOwner: `w1/${runId.slice(-4)}`, worker: 'w1', leaseMs: 30_000 },
    unclaimed: { revision: 'rev-9', elapsedMs: 250 },
  });
  const held = await commit([write(fresh), write(cancelled), write(leased)]);
  assert.deepEqual([...held.keys()], [fresh]);
  const rows = await query<{ id: string; status: string; next_seq: number; lease_owner: string | null; revision: string | null; steps: number; duration_ms: number | null }>(
    t.p.db,
    sql`select r.id, r.status::text as status, r.next_seq, r.lease_owner, r.revision,
          (select count(*)::int from steps s where s.run_id = r.id) as steps,
          (select s.duration_ms from steps s where s.run_id = r.id and s.seq = 0) as duration_ms
        from runs r where r.id in (${fresh}, ${cancelled}, ${leased})`,
  );
  const by = new Map(rows.map(({ id, ...r }) => [id, r]));
  const first = by.get(fresh);
  // Timed from its start, as a claim would have: 250 ms before its commit.
  assert.ok(first && (first.duration_ms ?? 0) >= 250 && (first.duration_ms ?? 0) < 10_000, JSON.stringify(first));
  assert.deepEqual({ ...first, duration_ms: 0 }, { status: 'running', next_seq: 1, lease_owner: `w1/${fresh.slice(-4)}`, revision: 'rev-9', steps: 1, duration_ms: 0 });
  assert.deepEqual(by.get(cancelled), { status: 'cancelled', next_seq: 0, lease_owner: null, revision: null, steps: 0, duration_ms: null });
  assert.deepEqual(by.get(leased), { status: 'running', next_seq: 0, lease_owner: 'x/1', revision: null, steps: 0, duration_ms: null });
  // Moved on: the same write again finds the run past its first step.
  assert.equal((await commit([write(fresh)])).size, 0);
});

test("an unclaimed first step's timeout does not count its claim: a claim slower than the timeout still lets the call go out", async () => {
  const id = await trigger(t.api, 'patient', {});
  // Another transaction holds the run's row: the read goes through, the claim before the call waits.
  const holder = new pg.Client({ connectionString: t.db.url });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query('select id from runs where id = $1 for update', [id]);
    const calls = t.llm?.calls.length ?? 0;
    const outcome = run('patient', id, true);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the step's timeout
    await holder.query('commit');
    assert.equal((await outcome).status, 'committed');
    assert.equal((await runRow(id)).status, 'succeeded');
    assert.equal(t.llm?.calls.length, calls + 1, 'the call went out once claimed');
  } finally {
    await holder.end();
  }
});
