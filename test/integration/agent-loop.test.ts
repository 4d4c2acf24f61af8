/**
 * The agent loop (README "Agents") against the real @ai-sdk/openai provider and the
 * OpenAI-compatible stub over real HTTP, with the real git and review MCP servers: the
 * model discovers the declared tools (tools/list), asks for calls (several in one turn),
 * each call runs as its own step through the gateway, and every later request carries
 * the results. Chat Completions streaming and not, and the Responses API.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import * as v from 'valibot';
import { toolCalls } from '../../schema/tables.ts';
import { defineAgent } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { conversationOf, scriptedReply } from '../helpers/agent-script.ts';
import type { LlmStub } from '../helpers/llm-stub.ts';
import { type TestPlatform, finalState, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const tools = { git: ['list_changed_files', 'get_diff'], review: ['post_comment'] };
const agentOf = (name: string, stream: boolean) =>
  defineAgent({
    name,
    input: v.object({ task: v.string() }),
    tools,
    agent: { instructions: 'You review changes with the tools you have.', prompt: (i) => i.task, stream },
  });

const SCRIPTS = {
  review: [
    { toolCalls: [{ name: 'git_list_changed_files', arguments: { range: 'HEAD' } }] },
    {
      toolCalls: [
        { name: 'git_get_diff', arguments: { range: 'HEAD', path: 'cart.js' } },
        { name: 'git_get_diff', arguments: { range: 'HEAD', path: 'README.md' } },
      ],
    },
    { toolCalls: [{ name: 'review_post_comment', arguments: { repo: 'acme/shop', pr: 3, body: 'Please drop the console.log.' } }] },
    'Reviewed acme/shop#3: one comment posted.',
  ],
  pair: [
    {
      toolCalls: [
        { name: 'git_list_changed_files', arguments: { range: 'HEAD' } },
        { name: 'git_get_diff', arguments: { range: 'HEAD' } },
      ],
    },
    'Two results read.',
  ],
  rogue: [
    {
      toolCalls: [
        { name: 'review_delete_all', arguments: { repo: 'acme/shop' } },
        { name: 'shell', arguments: { cmd: 'id' } },
      ],
    },
    'I could not use those tools.',
  ],
};

let t: TestPlatform;
let responses: TestPlatform;
before(async () => {
  const functions = registryOf(agentOf('streamed', true), agentOf('plain', false));
  t = await startTestPlatform({ functions, llm: { reply: scriptedReply(SCRIPTS) } });
  responses = await startTestPlatform({ functions, llm: { reply: scriptedReply(SCRIPTS) }, env: { BATON_OPENAI_API: 'responses' } });
});
after(async () => {
  await t?.close();
  await responses?.close();
});

const callsOf = (stub: LlmStub, task: string) => stub.calls.filter((c) => JSON.stringify(c.messages).includes(task));

test('a 4-turn run: every turn an llm step, every tool call a tool step, two calls in one turn, the conversation complete and in order', async () => {
  const id = await trigger(t.api, 'streamed', { task: 'script:review run 1' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.output, {
    answer: 'Reviewed acme/shop#3: one comment posted.',
    turns: 4,
    usage: { turns: 4, inputTokens: 44, outputTokens: 28, costUsd: null },
  });
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.kind, s.status, s.branch]),
    [
      [0, 'model', 'llm', 'succeeded', null],
      [1, 'tool', 'tool', 'succeeded', null],
      [2, 'model', 'llm', 'succeeded', null],
      [3, 'tool', 'tool', 'succeeded', 1],
      [4, 'tool', 'tool', 'succeeded', 2],
      [5, 'tool_results', 'compute', 'succeeded', null],
      [6, 'model', 'llm', 'succeeded', null],
      [7, 'tool', 'tool', 'succeeded', null],
      [8, 'model', 'llm', 'succeeded', null],
    ],
    'the two calls of turn 2 fan out (branches 1 and 2) and are joined once',
  );

  // The model saw exactly the declared tools, under their model-visible names, and streamed.
  const requests = callsOf(t.llm as LlmStub, 'script:review run 1');
  assert.equal(requests.length, 4);
  assert.ok(requests.every((r) => r.stream === true && r.api === 'chat'));
  const offered = (requests[0].tools as Array<{ function: { name: string; description: string } }>).map((x) => x.function.name).sort();
  assert.deepEqual(offered, ['git_get_diff', 'git_list_changed_files', 'review_post_comment']);
  // Later requests carry every earlier call's result (the stub refuses a history without them).
  assert.deepEqual(t.llm?.problems, []);
  const results = t.llm?.toolResults(requests[3]) ?? new Map();
  assert.equal(results.size, 4);
  assert.match([...results.values()][0], /"files":\[\{"path":/, 'the file list');
  assert.match([...results.values()][1], /"diff":/, 'a diff');
  assert.match([...results.values()][3], /"created":true/, 'the posted comment');

  // The final state holds the conversation, in order; each step appended only its part.
  const state = (await finalState(t.p, id)) as {
    messages: Array<{ role: string; content: Array<{ type: string; toolName?: string; toolCallId?: string }> | string }>;
  };
  const shape = state.messages.map((m) => (typeof m.content === 'string' ? m.role : `${m.role}:${m.content.map((p) => p.toolName ?? p.type).join('+')}`));
  assert.deepEqual(shape, [
    'user',
    'assistant:git_list_changed_files',
    'tool:git_list_changed_files',
    'assistant:git_get_diff+git_get_diff',
    'tool:git_get_diff',
    'tool:git_get_diff',
    'assistant:review_post_comment',
    'tool:review_post_comment',
    'assistant:text',
  ]);
  assert.deepEqual(conversationOf(steps), state.messages, 'the patches replay to the checkpoint');
  const second = state.messages[3].content as Array<{ toolCallId: string }>;
  assert.deepEqual(
    [4, 5].map((i) => (state.messages[i].content as Array<{ toolCallId: string }>)[0].toolCallId),
    second.map((c) => c.toolCallId),
    'results in the order of the calls',
  );
  const total = JSON.stringify(state.messages).length;
  const written = steps.reduce((n, s) => n + (JSON.stringify((s.patch as { messages?: unknown } | null)?.messages) ?? '').length, 0);
  assert.ok(written < total * 1.1, `patches add up to the conversation once (${written} bytes for ${total}), not a transcript per step`);

  const audit = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(asc(toolCalls.seq));
  assert.deepEqual(audit.map((a) => [a.seq, `${a.server}.${a.tool}`, a.decision, a.outcome]), [
    [1, 'git.list_changed_files', 'allowed', 'ok'],
    [3, 'git.get_diff', 'allowed', 'ok'],
    [4, 'git.get_diff', 'allowed', 'ok'],
    [7, 'review.post_comment', 'allowed', 'ok'],
  ]);
});

test('Chat Completions without streaming: two calls in one turn, both results in the next request', async () => {
  const id = await trigger(t.api, 'plain', { task: 'script:pair run 2' });
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const requests = callsOf(t.llm as LlmStub, 'script:pair run 2');
  assert.deepEqual(requests.map((r) => [r.api, r.stream ?? false]), [['chat', false], ['chat', false]]);
  const results = t.llm?.toolResults(requests[1]) ?? new Map();
  assert.deepEqual([...results.keys()], requests[1].messages.flatMap((m) => m.tool_calls ?? []).map((c) => c.id));
  assert.equal(results.size, 2);
  assert.equal((run.output as { answer: string }).answer, 'Two results read.');
});

test('the Responses API: function calls out, function_call_output items back', async () => {
  const id = await trigger(responses.api, 'plain', { task: 'script:pair run 3' });
  const { run } = await waitForRun(responses.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const requests = callsOf(responses.llm as LlmStub, 'script:pair run 3');
  assert.deepEqual(requests.map((r) => r.api), ['responses', 'responses']);
  const outputs = (requests[1].input as Array<{ type?: string; call_id?: string }>).filter((i) => i.type === 'function_call_output');
  assert.deepEqual(outputs.map((o) => o.call_id), ['call_1_0', 'call_1_1']);
  assert.deepEqual(responses.llm?.problems, []);
});

test('a model asking for an undeclared tool gets a tool error back, audited denied; the run goes on', async () => {
  const id = await trigger(t.api, 'streamed', { task: 'script:rogue run 4' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal((run.output as { answer: string }).answer, 'I could not use those tools.');
  assert.deepEqual(steps.map((s) => [s.name, s.status, s.attempt]), [
    ['model', 'succeeded', 1],
    ['tool', 'succeeded', 1],
    ['tool', 'succeeded', 1],
    ['tool_results', 'succeeded', 1],
    ['model', 'succeeded', 1],
  ]);
  const requests = callsOf(t.llm as LlmStub, 'script:rogue run 4');
  const results = [...(t.llm?.toolResults(requests[1]) ?? new Map()).values()];
  assert.match(results[0], /review_delete_all is not available to this agent: .*did not declare review\.delete_all/);
  assert.match(results[1], /shell is not available to this agent/);
  const audit = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(asc(toolCalls.seq));
  assert.deepEqual(audit.map((a) => [a.seq, a.server, a.tool, a.decision, a.outcome]), [
    [1, 'review', 'delete_all', 'denied', 'denied'],
    [2, 'shell', '', 'denied', 'denied'],
  ]);
  assert.equal(audit[0].reason, 'function "streamed" did not declare review.delete_all');
});
