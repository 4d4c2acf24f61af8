/**
 * Checkpoints: a patch per step, a full snapshot every K-th step and at the end when BATON_SNAPSHOT_EVERY=K, and
 * each step sees exactly the state the earlier steps built (last snapshot + patches).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq, sql } from 'drizzle-orm';
import * as v from 'valibot';
import { append, defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { checkpoints, steps } from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const STEPS = 22;
const BIG = 'x'.repeat(2000);

const counter = defineAgent({
  name: 'counter',
  input: v.object({}),
  start: 'tick',
  steps: {
    tick: (ctx) => {
      const seen = (ctx.state.log as number[] | undefined) ?? [];
      // Every step checks it sees all earlier contributions, in order.
      assert.deepEqual(seen, Array.from({ length: ctx.seq }, (_, i) => i));
      if (ctx.seq === STEPS - 1) return done({ total: seen.length + 1 }, { log: append(ctx.seq) });
      return next('tick', { log: append(ctx.seq), last: ctx.seq, note: BIG });
    },
  },
});

const nul = defineAgent({
  name: 'nul',
  input: v.object({}),
  start: 'emit',
  steps: { emit: () => done({ text: 'a\u0000b' }) },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(counter, nul), tools: false, llm: 'offline', env: { BATON_SNAPSHOT_EVERY: '4' } });
});
after(() => t.close());

test('BATON_SNAPSHOT_EVERY=4: a snapshot every 4th step and at the end; patches hold only the change', async () => {
  const id = await trigger(t.api, 'counter', {});
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.output, { total: STEPS });

  const snaps = await t.p.db.select().from(checkpoints).where(eq(checkpoints.runId, id)).orderBy(asc(checkpoints.seq));
  assert.deepEqual(snaps.map((s) => s.seq), [3, 7, 11, 15, 19, 21], 'every 4th step, and the last');
  assert.deepEqual((snaps.at(-1)?.state as { log: number[] }).log, Array.from({ length: STEPS }, (_, i) => i));

  // Bytes written per step follow the change: a patch stays the same size as the log grows.
  const sizes = await t.p.db
    .select({ seq: steps.seq, bytes: sql<number>`octet_length(${steps.patch}::text)` })
    .from(steps)
    .where(eq(steps.runId, id))
    .orderBy(asc(steps.seq));
  const middle = sizes.slice(1, -1).map((s) => Number(s.bytes));
  assert.ok(Math.max(...middle) - Math.min(...middle) < 10, `patch sizes ${middle.join(',')}`);
});

test('a result the database cannot store fails the run at once, with the reason (it is not re-run forever)', async () => {
  const id = await trigger(t.api, 'nul', {});
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  assert.equal((run.error as { code: string }).code, 'invalid_step_result');
  assert.match((run.error as { message: string }).message, /output\.text: contains the character U\+0000/);
  assert.equal(steps[0].attempt, 1);
});
