/**
 * The agent loop under SIGKILL (real PostgreSQL, Redis, the review MCP server, the LLM
 * stub over HTTP, `baton worker` processes). A scripted model asks, in one turn, for two
 * review comments (two parallel calls: two branches, each a side effect the review tool
 * stores once per run_id:seq), then answers. One worker armed with a fault point runs
 * alone until it kills itself; two plain workers then finish every run:
 *   - during a tool call's branch: after the post, before its commit (`after-call@tool`);
 *   - during the join, before its commit (`before-commit@tool_results`);
 *   - between the last branch's commit and the join's publish (`after-last-branch`).
 * Every run succeeds; each comment is stored once, however many times it was delivered;
 * the join commits once; the conversation is complete, results in call order.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { conversationOf, scriptedReply, type Script } from '../helpers/agent-script.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { type BatonProcess, runAlone, spawnBaton, startWorkerProcess, stopAll } from '../helpers/processes.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const RUNS = 2;

runAlone();

/** Script `pN`: two comments on PR N in one turn, then an answer. */
const scripts: Record<string, Script> = {};
for (let pr = 1; pr <= 3 * RUNS; pr++) {
  scripts[`p${pr}`] = [
    {
      toolCalls: [
        { name: 'review_post_comment', arguments: { repo: 'acme/agent', pr, body: `first on ${pr}` } },
        { name: 'review_post_comment', arguments: { repo: 'acme/agent', pr, body: `second on ${pr}` } },
      ],
    },
    `Posted two comments on #${pr}.`,
  ];
}

let t: TestPlatform;
let env: Record<string, string>;
let pr = 0;
before(async () => {
  t = await startTestPlatform({ worker: false, llm: { reply: scriptedReply(scripts) }, functions: await loadFunctions(FIXTURES, ['poster-agent']) });
  env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_LEASE_MS: '1000' };
});
after(() => t?.close());

async function scenario(fault: string): Promise<Array<{ id: string; pr: number }>> {
  const procs: BatonProcess[] = [];
  try {
    const armed = spawnBaton('worker', { ...env, BATON_FAULTS: fault, BATON_TEST_HOOKS: '1' }, 'armed');
    procs.push(armed);
    await armed.waitForLine(/^baton worker /, 30_000);
    const runs: Array<{ id: string; pr: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      pr++;
      runs.push({ id: await trigger(t.api, 'poster-agent', { task: `script:p${pr}` }), pr });
    }
    await armed.waitForLine(/^\{"fault":/, 30_000);
    assert.equal((await armed.exited).signal, 'SIGKILL', 'the armed worker killed itself');
    procs.push(...(await Promise.all([startWorkerProcess(env, 'plain1'), startWorkerProcess(env, 'plain2')])));
    for (const r of runs) await waitForRun(t.p, r.id, undefined, 60_000);
    return runs;
  } finally {
    await stopAll(procs);
  }
}

async function verify(runs: Array<{ id: string; pr: number }>): Promise<number> {
  let redelivered = 0;
  for (const { id, pr: n } of runs) {
    const { run, steps, attempts } = await waitForRun(t.p, id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.equal((run.output as { answer: string }).answer, `Posted two comments on #${n}.`);
    assert.deepEqual(steps.map((s) => [s.seq, s.name, s.branch]), [[0, 'model', null], [1, 'tool', 1], [2, 'tool', 2], [3, 'tool_results', null], [4, 'model', null]]);
    assert.equal(attempts.filter((a) => a.seq === 3 && a.status === 'succeeded').length, 1, 'the join committed once');
    const comments = (await t.tools?.reviews.list({ repo: 'acme/agent', pr: n })) ?? [];
    assert.deepEqual(comments.map((c) => c.body).sort(), [`first on ${n}`, `second on ${n}`], 'each comment stored once');
    redelivered += comments.filter((c) => c.deliveries > 1).length;
    const messages = conversationOf(steps);
    assert.deepEqual(messages.map((m) => m.role), ['user', 'assistant', 'tool', 'tool', 'assistant']);
    const bodies = messages.filter((m) => m.role === 'tool').map((m) => JSON.stringify(m.content));
    assert.match(bodies[0], new RegExp(`first on ${n}`));
    assert.match(bodies[1], new RegExp(`second on ${n}`), 'results in call order');
  }
  return redelivered;
}

test('SIGKILL after a branch posted, before its commit: the branch runs again, the comment is stored once', { timeout: 180_000 }, async () => {
  const redelivered = await verify(await scenario('after-call@tool=1'));
  assert.ok(redelivered >= 1, 'the killed branch delivered its post again, and the tool deduplicated it');
});

test('SIGKILL in the join, before its commit: the join runs again, once committed', { timeout: 180_000 }, async () => {
  await verify(await scenario('before-commit@tool_results=1'));
});

test('SIGKILL between the last branch commit and the join: the join still runs, exactly once', { timeout: 180_000 }, async () => {
  await verify(await scenario('after-last-branch=1'));
});
