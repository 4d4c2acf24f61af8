/**
 * A long conversation with the default settings: snapshots are taken by size (engine/
 * snapshot-policy.ts), so a transcript growing by 2 KB a step writes a few snapshots, not
 * one every few steps, and every step (continued in process or claimed from the queue
 * after a wait) still sees exactly the state the earlier steps built.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import * as v from 'valibot';
import { query } from '../../runtime/db/connect.ts';
import { append, defineAgent, done, next, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { stateBefore } from '../../runtime/store/step-detail.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const STEPS = 120;
const content = (seq: number) => `${seq}:`.padEnd(2048, String.fromCharCode(97 + (seq % 26)));
const transcript = (steps: number) => Array.from({ length: steps }, (_, seq) => ({ seq, content: content(seq) }));

const conversation = defineAgent({
  name: 'conversation',
  input: v.object({}),
  start: 'turn',
  steps: {
    turn: (ctx) => {
      // Every step checks it sees every earlier message, once, in order.
      assert.deepEqual(ctx.state.messages ?? [], transcript(ctx.seq), `step ${ctx.seq} saw another state`);
      const patch = { messages: append({ seq: ctx.seq, content: content(ctx.seq) }), turn: ctx.seq };
      if (ctx.seq === STEPS - 1) return done({ messages: STEPS }, patch);
      // Now and then the run parks: the next step is claimed from the queue and loads its state from the rows.
      if (ctx.seq % 25 === 24) return wait('tick', { next: 'turn', timeoutMs: 1, patch });
      return next('turn', patch);
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(conversation), tools: false, llm: 'offline' });
});
after(() => t.close());

test('a long run: few snapshots, bytes that follow the change, and rows that replay to the same state at every step', async () => {
  const id = await trigger(t.api, 'conversation', {});
  const { run } = await waitForRun(t.p, id, undefined, 120_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));

  const [stored] = await query<{ patches: number; snapshots: number; seqs: number[] }>(
    t.p.db,
    sql`select (select sum(octet_length(patch::text))::float8 from steps where run_id = ${id}) as patches,
               (select coalesce(sum(octet_length(state::text)), 0)::float8 from checkpoints where run_id = ${id}) as snapshots,
               (select coalesce(array_agg(seq order by seq), '{}') from checkpoints where run_id = ${id}) as seqs`,
  );
  // A snapshot every 8 steps would be 15 of them, 7.5× the patches' bytes.
  assert.ok(stored.seqs.length <= 6, `snapshots at ${stored.seqs.join(',')}`);
  assert.ok(stored.snapshots <= 1.5 * stored.patches, `snapshots ${stored.snapshots} B for patches ${stored.patches} B`);

  // What a claim of any step would load (last snapshot + later patches), and the final state.
  for (let seq = 0; seq <= STEPS; seq++) {
    const state = await stateBefore(t.p.db, id, seq);
    assert.deepEqual(state.messages ?? [], transcript(seq), `the rows before step ${seq} replay to another state`);
  }
});
