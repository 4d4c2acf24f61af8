/**
 * Continue in process: a worker that commits a step handing on to a next step claims
 * that step in the same statement and runs it at once, without a trip through Redis.
 * The message that started the chain stays pending (KEDA sees the work in flight)
 * until the chain leaves the process, and the rows read exactly as before.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import * as v from 'valibot';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done, next, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { Delivery } from '../../runtime/queue/queue.ts';
import type { StepOutcome } from '../../runtime/engine/execute-step.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const STEPS = 10;

const count = defineAgent({
  name: 'count',
  input: v.object({ steps: v.number(), ms: v.optional(v.number()) }),
  start: 'step',
  steps: {
    step: async (ctx) => {
      if (ctx.input.ms) await new Promise((resolve) => setTimeout(resolve, ctx.input.ms));
      const n = ((ctx.state.n as number | undefined) ?? 0) + 1;
      return n >= ctx.input.steps ? done({ n }, { n }) : next('step', { n });
    },
  },
});

/** Two steps, then a wait for a signal: the chain leaves the process at the wait. */
const approval = defineAgent({
  name: 'approval',
  input: v.object({}),
  start: 'one',
  steps: {
    one: () => next('two', { one: true }),
    two: () => wait('approve', { next: 'three' }),
    three: (ctx) => done({ approved: ctx.signal?.payload ?? null }),
  },
});

const outcomes: Array<{ delivery: Delivery; outcome: StepOutcome }> = [];
let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(count, approval),
    tools: false,
    llm: 'offline',
    worker: { onOutcome: (delivery, outcome) => outcomes.push({ delivery, outcome }) },
  });
});
after(() => t.close());

test(`a ${STEPS}-step run on one worker: one queue message, every step claimed by the commit before it`, async () => {
  const id = await trigger(t.api, 'count', { steps: STEPS });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { n: STEPS });
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.status, s.attempt]),
    Array.from({ length: STEPS }, (_, i) => [i, 'step', 'succeeded', 1]),
  );
  const mine = outcomes.filter((o) => o.delivery.message.runId === id);
  assert.equal(mine.length, 1, 'the whole run came from the one message the API published');
  assert.deepEqual(mine[0].outcome, { status: 'committed', result: 'done', nextSeq: STEPS });
  const [row] = await query<{ claims: number; lease_owner: string | null; attempts: number }>(
    t.p.db,
    sql`select claims, lease_owner, (select count(*)::int from step_attempts where run_id = ${id}) as attempts from runs where id = ${id}`,
  );
  assert.deepEqual(row, { claims: 0, lease_owner: null, attempts: STEPS }, 'the run is released, one attempt row per step');
});

test('while a chain runs in process its message stays pending: the queue shows the work in flight', async () => {
  // Steps long enough (0.4 s each) that a busy machine still finds the run going when it looks.
  const id = await trigger(t.api, 'count', { steps: 6, ms: 400 });
  await waitFor(async () => {
    const [r] = await query<{ next_seq: number }>(t.p.db, sql`select next_seq from runs where id = ${id}`);
    return r.next_seq >= 2;
  }, 'the run to be a few steps in');
  const [depth] = await t.p.queue.depth(['count']);
  assert.equal(depth.pending, 1, 'one step in flight, pending in the stream');
  assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  await waitFor(async () => (await t.p.queue.depth(['count']))[0].pending === 0, 'the message to be acked once the run finished');
});

test('the chain leaves the process at a wait, and a signal brings the run back through the queue', async () => {
  const id = await trigger(t.api, 'approval', {});
  await waitForRun(t.p, id, ['waiting']);
  assert.equal(outcomes.filter((o) => o.delivery.message.runId === id).length, 1, 'steps one and two ran from one message');
  const res = await t.api.request(`/v1/runs/${id}/signals/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ok: true }),
  });
  assert.equal(res.status, 202);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.status]),
    [
      [0, 'one', 'succeeded'],
      [1, 'two', 'succeeded'],
      [2, 'three', 'succeeded'],
    ],
  );
});

test('a step claimed by the commit before it gets its rows with its result: complete, in order, timed from its claim', async () => {
  const id = await trigger(t.api, 'count', { steps: STEPS });
  assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  const rows = await query<{ seq: number; worker: string | null; started: number; finished: number; duration_ms: number; a_status: string; a_worker: string | null; a_started: number; a_finished: number }>(
    t.p.db,
    sql`select s.seq, s.worker, extract(epoch from s.started_at)::float8 as started, extract(epoch from s.finished_at)::float8 as finished, s.duration_ms,
          a.status::text as a_status, a.worker as a_worker, extract(epoch from a.started_at)::float8 as a_started, extract(epoch from a.finished_at)::float8 as a_finished
        from steps s join step_attempts a using (run_id, seq) where s.run_id = ${id} order by s.seq`,
  );
  assert.equal(rows.length, STEPS);
  for (const [i, r] of rows.entries()) {
    assert.equal(r.a_status, 'succeeded');
    assert.ok(r.worker && r.worker === r.a_worker, `step ${r.seq} names its worker`);
    assert.ok(r.started <= r.finished && r.duration_ms >= 0, `step ${r.seq} starts before it finishes`);
    assert.equal(r.started, r.a_started);
    assert.equal(r.finished, r.a_finished);
    // Claimed by the commit of the step before: the same statement, the same moment.
    if (i > 0) assert.equal(r.started, rows[i - 1].finished, `step ${r.seq} was claimed when step ${r.seq - 1} committed`);
  }
});

test('a step claimed by the commit before it shows as running while it runs', async () => {
  // A second per step, so a poll every 25 ms cannot miss step 1 running, however busy the machine.
  const id = await trigger(t.api, 'count', { steps: 3, ms: 1000 });
  const seen = await waitFor(async () => {
    const [r] = await query<{ status: string; a_status: string | null; started_at: string }>(
      t.p.db,
      sql`select s.status::text as status, a.status::text as a_status, s.started_at::text as started_at
          from steps s left join step_attempts a on a.run_id = s.run_id and a.seq = s.seq and a.attempt = s.attempt
          where s.run_id = ${id} and s.seq = 1`,
    );
    return r?.status === 'running' ? r : null;
  }, 'step 1 (claimed in process) to show as running', 5000);
  assert.equal(seen.a_status, 'running', 'its attempt row is open too');
  const [step0] = await query<{ finished_at: string }>(t.p.db, sql`select finished_at::text as finished_at from steps where run_id = ${id} and seq = 0`);
  assert.equal(seen.started_at, step0.finished_at, 'started when the commit of step 0 claimed it');
  assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
});
