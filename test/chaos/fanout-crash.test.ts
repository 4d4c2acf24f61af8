/**
 * Fan-out under SIGKILL (real PostgreSQL, Redis, tool servers and `baton worker`
 * processes). Each scenario starts one worker armed with a fault point
 * (BATON_FAULTS + BATON_TEST_HOOKS=1) alone, so it is the one that gets there, triggers
 * fan-outs of 3 branches whose bodies and join each post a review comment (a side
 * effect the review tool stores once per run_id:seq), waits for the armed worker to
 * kill itself, then starts two plain workers that must finish everything:
 *   - during a branch: after a branch's tool call, before its commit (`after-call@work`);
 *   - during the join: after the join's tool call, before its commit (`after-call@join`);
 *   - between the last branch's commit and the join's publish (`after-last-branch`).
 * Checked for every run: it succeeded; its rows are the fan-out, its 3 branches and one
 * join, each seq once; the join committed once (one attempt), after every branch, with
 * every branch's result in order; every side effect is stored exactly once, however
 * many times it was delivered. And per moment: the killed step ran again and its
 * repeat was deduplicated, or (after-last-branch) the join ran exactly once although
 * nobody published it before the crash.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { inArray } from 'drizzle-orm';
import { loadFunctions } from '../../runtime/functions.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { toolCalls } from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { type BatonProcess, runAlone, spawnBaton, startWorkerProcess, stopAll } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const RUNS = 3;
const BRANCHES = 3;

runAlone();

let t: TestPlatform;
let env: Record<string, string>;
let pr = 0;
before(async () => {
  t = await startTestPlatform({ worker: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['fanout']) });
  env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_LEASE_MS: '1000' };
});
after(() => t.close());

interface Fault {
  fault: string;
  runId: string;
  seq: number;
  step: string;
}

/** Runs the scenario: the armed worker alone until it dies at `fault`, then two plain workers. */
async function scenario(fault: string): Promise<{ ids: string[]; hit: Fault }> {
  const procs: BatonProcess[] = [];
  try {
    const armed = spawnBaton('worker', { ...env, BATON_FAULTS: fault, BATON_TEST_HOOKS: '1' }, 'armed');
    procs.push(armed);
    await armed.waitForLine(/^baton worker /, 30_000);
    const ids: string[] = [];
    for (let i = 0; i < RUNS; i++) ids.push(await trigger(t.api, 'fanout', { branches: BRANCHES, delayMs: 200, post: true, pr: ++pr }));
    const line = await armed.waitForLine(/^\{"fault":/, 30_000);
    assert.equal((await armed.exited).signal, 'SIGKILL', 'the armed worker killed itself');
    const hit = JSON.parse(line) as Fault;
    procs.push(...(await Promise.all([startWorkerProcess(env, 'plain1'), startWorkerProcess(env, 'plain2')])));
    for (const id of ids) await waitForRun(t.p, id, undefined, 60_000);
    return { ids, hit };
  } finally {
    await stopAll(procs);
  }
}

interface Outcome {
  index: number;
  ok: boolean;
  output: { i: number; commentId: number } | null;
}

/** The checks every scenario shares; returns the tool-call audit rows per `run:seq`. */
async function verify(ids: string[]): Promise<Map<string, number>> {
  const comments = await t.tools?.reviews.list({ repo: 'acme/fanout' });
  assert.ok(comments);
  const byKey = new Map(comments.map((c) => [c.idempotencyKey, c]));
  for (const id of ids) {
    const full = await getRunWithSteps(t.p.db, id);
    assert.ok(full);
    const { run, steps, attempts } = full;
    assert.equal(run.status, 'succeeded', `run ${id}: ${JSON.stringify(run.error)}`);
    assert.deepEqual(
      steps.map((s) => [s.seq, s.name, s.status, s.branch]),
      [[0, 'plan', 'succeeded', null], [1, 'work', 'succeeded', 1], [2, 'work', 'succeeded', 2], [3, 'work', 'succeeded', 3], [4, 'join', 'succeeded', null]],
      `run ${id}: the fan-out, its branches and one join, each seq once`,
    );
    const join = steps[4];
    assert.deepEqual(attempts.filter((a) => a.seq === 4).map((a) => [a.attempt, a.status]), [[1, 'succeeded']], `run ${id}: the join committed once`);
    for (const b of steps.slice(1, 4)) assert.ok(join.startedAt >= (b.finishedAt as Date), `run ${id}: the join started after branch ${b.branch} committed`);
    const out = run.output as { branches: Outcome[]; commentId: number };
    assert.deepEqual(out.branches.map((b) => [b.index, b.ok, b.output?.i]), [[1, true, 1], [2, true, 2], [3, true, 3]], `run ${id}: every result, in order`);
    // Every side effect once: one comment per step that posts, and the one each step reported.
    for (const seq of [1, 2, 3, 4]) {
      const c = byKey.get(`${id}:${seq}`);
      assert.ok(c, `run ${id}: the comment of seq ${seq} is stored`);
      const reported = seq === 4 ? out.commentId : out.branches[seq - 1].output?.commentId;
      assert.equal(reported, c.id, `run ${id}: seq ${seq} reports the stored comment`);
    }
  }
  const keys = comments.filter((c) => ids.some((id) => c.idempotencyKey?.startsWith(`${id}:`)));
  assert.equal(keys.length, ids.length * (BRANCHES + 1), 'exactly one comment per branch and per join: no side effect twice');
  const calls = await t.p.db.select().from(toolCalls).where(inArray(toolCalls.runId, ids));
  const perStep = new Map<string, number>();
  for (const c of calls) perStep.set(`${c.runId}:${c.seq}`, (perStep.get(`${c.runId}:${c.seq}`) ?? 0) + 1);
  return perStep;
}

async function deliveries(key: string): Promise<number> {
  const comments = await t.tools?.reviews.list({ repo: 'acme/fanout' });
  return comments?.find((c) => c.idempotencyKey === key)?.deliveries ?? 0;
}

test('SIGKILL during a branch (after its side effect, before its commit): the branch runs again elsewhere, its side effect stays single, the join runs once', { timeout: 120_000 }, async () => {
  const { ids, hit } = await scenario('after-call@work=1');
  assert.deepEqual([hit.fault, hit.step], ['after-call', 'work']);
  const calls = await verify(ids);
  const key = `${hit.runId}:${hit.seq}`;
  assert.ok((calls.get(key) ?? 0) >= 2, `the killed branch ${key} ran again (${calls.get(key)} tool calls)`);
  assert.ok((await deliveries(key)) >= 2, 'its post arrived again and was deduplicated');
  console.log(`during a branch: killed at ${key}; it ran ${calls.get(key)} times, posted once (${await deliveries(key)} deliveries); ${ids.length} runs finished, one join each`);
});

test('SIGKILL during the join (after its side effect, before its commit): the join runs again once more, commits once, its side effect stays single', { timeout: 120_000 }, async () => {
  const { ids, hit } = await scenario('after-call@join=1');
  assert.deepEqual([hit.fault, hit.step, hit.seq], ['after-call', 'join', 4]);
  const calls = await verify(ids);
  const key = `${hit.runId}:4`;
  assert.equal(calls.get(key), 2, 'the killed join ran a second time, and only that');
  assert.equal(await deliveries(key), 2, 'its post arrived twice and was stored once');
  console.log(`during the join: killed at ${key}; the join ran twice, committed once, posted once; ${ids.length} runs finished`);
});

test('SIGKILL between the last branch commit and the join publish: the join is published by the repair and runs exactly once', { timeout: 120_000 }, async () => {
  const { ids, hit } = await scenario('after-last-branch=1');
  assert.equal(hit.fault, 'after-last-branch');
  const calls = await verify(ids);
  for (const id of ids) assert.equal(calls.get(`${id}:4`), 1, `run ${id}: the join ran exactly once`);
  const killed = await getRunWithSteps(t.p.db, hit.runId);
  assert.ok(killed?.steps[4].worker?.startsWith('plain'), 'a plain worker ran the join the dead one never published');
  console.log(`between last branch and join: killed after ${hit.runId}:${hit.seq}; every join ran once (${ids.map((id) => calls.get(`${id}:4`)).join(', ')})`);
});
