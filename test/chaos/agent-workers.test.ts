/**
 * The agent loop on two worker processes (real PostgreSQL, Redis, `baton worker`
 * processes, the LLM stub over HTTP, a real MCP tool server): a 4-turn run whose second
 * turn asks for two 1.5 s tool calls (long, so that a busy machine still starts the second
 * before the first ends). The two calls are branches of a fan-out: they run
 * on different workers at the same time (each worker runs one step at a time,
 * BATON_CONCURRENCY=1, so overlapping windows can only mean two workers; the tool
 * server's own clock says the same), the join runs once, after both, and the final
 * checkpoint holds the whole conversation in order.
 * Runs alone (runAlone): it measures overlapping windows.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { scriptedReply } from '../helpers/agent-script.ts';
import { finalState, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { runAlone, startWorkerProcess, stopAll, teardown } from '../helpers/processes.ts';
import { startSlowTool } from '../helpers/slow-tool.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const sleep = (ms: number, tag: string) => ({ name: 'slow_sleep', arguments: { ms, tag } });
const SCRIPT = [
  { toolCalls: [sleep(20, 'first')] },
  { toolCalls: [sleep(1500, 'left'), sleep(1500, 'right')] },
  { toolCalls: [sleep(20, 'last')] },
  'Slept four times.',
];

runAlone();

test('a 4-turn agent run: its two parallel tool calls run at the same time on two workers, joined once, the conversation in order', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, tools: false, llm: { reply: scriptedReply({ slow: SCRIPT }) }, functions: await loadFunctions(FIXTURES, ['slow-agent']) });
  defer(() => t.close());
  const slow = await startSlowTool(t.keys.publicKeyPem);
  defer(() => slow.close());
  const env = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES, BATON_CONCURRENCY: '1', BATON_TOOL_SLOW_URL: slow.url };
  const workers = await Promise.all([startWorkerProcess(env, 'left'), startWorkerProcess(env, 'right')]);
  defer(() => stopAll(workers));

  const id = await trigger(t.api, 'slow-agent', { task: 'script:slow' });
  const { run, steps, attempts } = await waitForRun(t.p, id, undefined, 60_000);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual((run.output as { answer: string; turns: number }).turns, 4);
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.kind, s.branch]),
    [
      [0, 'model', 'llm', null],
      [1, 'tool', 'tool', null],
      [2, 'model', 'llm', null],
      [3, 'tool', 'tool', 1],
      [4, 'tool', 'tool', 2],
      [5, 'tool_results', 'compute', null],
      [6, 'model', 'llm', null],
      [7, 'tool', 'tool', null],
      [8, 'model', 'llm', null],
    ],
  );

  // The branches: two workers, overlapping windows, by the rows and by the tool server's clock.
  const [b1, b2, join] = [steps[3], steps[4], steps[5]];
  assert.notEqual(b1.worker, b2.worker, 'the two calls ran on different workers');
  assert.ok(b1.startedAt < (b2.finishedAt as Date) && b2.startedAt < (b1.finishedAt as Date), 'their steps overlap');
  const [left, right] = ['left', 'right'].map((tag) => slow.windows.find((w) => w.tag === tag));
  assert.ok(left && right);
  assert.equal(left.key, `${id}:3`, "each call carries its own step's idempotency key");
  assert.equal(right.key, `${id}:4`);
  assert.ok(left.startedAt < right.endedAt && right.startedAt < left.endedAt, 'the tool ran both calls at the same time');
  const overlap = Math.min(left.endedAt, right.endedAt) - Math.max(left.startedAt, right.startedAt);

  // The join: once, after both branches committed.
  assert.equal(attempts.filter((a) => a.seq === join.seq).length, 1, 'one attempt of the join');
  assert.ok(join.startedAt >= (b1.finishedAt as Date) && join.startedAt >= (b2.finishedAt as Date));
  assert.equal(slow.windows.length, 4, 'each call ran once');

  // The final state: the whole conversation, results in the order of the calls.
  const messages = ((await finalState(t.p, id)) as { messages: Array<{ role: string; content: unknown }> }).messages;
  const tags = messages.map((m) => {
    if (m.role !== 'tool') return m.role;
    const part = (m.content as Array<{ output: { value: { tag: string } } }>)[0];
    return `tool:${part.output.value.tag}`;
  });
  assert.deepEqual(tags, ['user', 'assistant', 'tool:first', 'assistant', 'tool:left', 'tool:right', 'assistant', 'tool:last', 'assistant']);
  console.log(`parallel tool calls: branch 1 on ${b1.worker}, branch 2 on ${b2.worker}, overlap ${overlap} ms; join on ${join.worker}`);
});
