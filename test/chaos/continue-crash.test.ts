/**
 * A worker that dies in the middle of a chain it runs in process (each step claimed by
 * the commit before it, no queue message per step) loses nothing: the message that
 * started the chain is still pending, turns idle once the dead worker's lease has run
 * out, and another worker's reclaim repairs the run from its last commit. The sweeper
 * is held off for the whole test, so the reclaim alone must do it.
 *
 * The worker dies by its own fault points at each moment of a continued step: just
 * after the commit that claimed the next step, once that step is claimed, and just
 * before that step's own commit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { runAlone, spawnBaton, startWorkerProcess, stopAll, teardown } from '../helpers/processes.ts';

const STEPS = 8;

runAlone();

/** The moment, and when: the Nth time it is reached is within a continued step (step 0 came from the queue). */
const FAULTS: Array<[string, string]> = [
  ['after-commit', '#2'],
  ['claimed', '#3'],
  ['before-commit', '#3'],
];

for (const [fault, when] of FAULTS) {
  test(`a worker dying at "${fault}" mid-chain: another worker's reclaim finishes the run, each step committed once`, { timeout: 120_000 }, async (tc) => {
    const defer = teardown(tc);
    const t = await startTestPlatform({ worker: false, tools: false, llm: 'offline' });
    defer(() => t.close());
    const env = { ...t.env, BATON_LEASE_MS: '1000', BATON_SWEEP_AFTER_MS: '600000' };

    const doomed = spawnBaton('worker', { ...env, BATON_FAULTS: `${fault}=${when}`, BATON_TEST_HOOKS: '1' }, 'doomed');
    defer(() => stopAll([doomed]));
    await doomed.waitForLine(/^baton worker /, 60_000);
    const id = await trigger(t.api, 'chain', { steps: STEPS });
    await doomed.exited;
    const died = doomed.lines.map((l) => /^\{"fault":"([a-z-]+)".*"seq":(\d+)/.exec(l)).find(Boolean);
    assert.ok(died, `the worker died at a fault point: ${doomed.lines.slice(-5).join('\n')}`);
    const [before] = await query<{ next_seq: number; status: string }>(t.p.db, sql`select next_seq, status::text as status from runs where id = ${id}`);
    assert.equal(before.status, 'running', 'the run was left mid-chain');
    assert.ok(Number(died[2]) >= 1, `it died in a step claimed in process (step ${died[2]})`);

    const rescuer = await startWorkerProcess({ ...env, BATON_LOG_LEVEL: 'debug' }, 'rescuer');
    defer(() => stopAll([rescuer]));
    const { run, steps } = await waitForRun(t.p, id, undefined, 60_000).catch(async (err: Error) => {
      // What the rescuer saw, and where the run and its message stand, for the failure message.
      const [row] = await query(t.p.db, sql`select next_seq, status::text as status, lease_owner, lease_expires_at::text, now()::text as now from runs where id = ${id}`);
      const pending = await t.p.queue.depth(['chain']);
      throw new Error(`${err.message}\nrun ${JSON.stringify(row)}; queue ${JSON.stringify(pending)}\nrescuer:\n${rescuer.lines.slice(-30).join('\n')}`);
    });
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.output, { steps: STEPS });
    assert.deepEqual(
      steps.map((s) => [s.seq, s.status]),
      Array.from({ length: STEPS }, (_, i) => [i, 'succeeded']),
      'every step once, in order',
    );
    console.log(`continue-crash: died at ${died[1]} of step ${died[2]} (run at seq ${before.next_seq}); the rescuer finished the run`);
  });
}
