/**
 * Budgets: an agent's maxTurns, maxTokens and maxCostUsd (and a run's own, in its input
 * under `budget`). The run fails `budget_exceeded` naming the budget, and the
 * conversation so far stays in its steps.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { conversationOf, scriptedReply } from '../helpers/agent-script.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const looper = defineAgent({
  name: 'looper',
  input: v.object({ task: v.string() }),
  tools: { git: ['list_changed_files'] },
  // The stub answers 11 + 7 tokens per call; BATON_PRICES below makes a call cost $0.000025.
  agent: { instructions: 'Keep listing.', prompt: (i) => i.task, maxTurns: 2 },
});
const spender = defineAgent({
  name: 'spender',
  input: v.object({ task: v.string() }),
  tools: { git: ['list_changed_files'] },
  agent: { instructions: 'Keep listing.', prompt: (i) => i.task, maxCostUsd: 0.00004 },
});

const forever = [{ toolCalls: [{ name: 'git_list_changed_files', arguments: { range: 'HEAD' } }] }];

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(looper, spender),
    llm: { reply: scriptedReply({ forever }) },
    env: { BATON_PRICES: JSON.stringify({ 'stub-model': { input: 1, output: 2 } }) },
  });
});
after(() => t?.close());

const roles = (steps: Parameters<typeof conversationOf>[0]) => conversationOf(steps).map((m) => m.role);

test('maxTurns: the third turn is refused; two turns and their results are kept', async () => {
  const id = await trigger(t.api, 'looper', { task: 'script:forever turns' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; details: { budget: string; limit: number; used: number }; step: string };
  assert.equal(error.code, 'budget_exceeded');
  assert.deepEqual(error.details, { budget: 'maxTurns', limit: 2, used: 2 });
  assert.equal(error.step, 'model');
  assert.deepEqual(steps.map((s) => [s.name, s.status]), [
    ['model', 'succeeded'],
    ['tool', 'succeeded'],
    ['model', 'succeeded'],
    ['tool', 'succeeded'],
    ['model', 'failed'],
  ]);
  assert.equal(steps.at(-1)?.attempt, 1, 'not retried');
  assert.deepEqual(roles(steps), ['user', 'assistant', 'tool', 'assistant', 'tool']);
});

test('maxTokens from the run input: the turn that went over is kept, then the run fails', async () => {
  const id = await trigger(t.api, 'looper', { task: 'script:forever tokens', budget: { maxTokens: 30, maxTurns: 10 } });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; details: unknown; step: string };
  assert.equal(error.code, 'budget_exceeded');
  assert.deepEqual(error.details, { budget: 'maxTokens', limit: 30, used: 36 });
  assert.equal(error.step, 'over_budget');
  assert.deepEqual(steps.map((s) => s.name), ['model', 'tool', 'model', 'over_budget']);
  assert.deepEqual(roles(steps), ['user', 'assistant', 'tool', 'assistant'], "the second turn's answer is kept");
});

test('maxCostUsd: priced by BATON_PRICES, the second call goes over', async () => {
  const id = await trigger(t.api, 'spender', { task: 'script:forever cost' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'failed');
  const error = run.error as { code: string; details: { budget: string; limit: number; used: number } };
  assert.equal(error.code, 'budget_exceeded');
  assert.deepEqual(error.details, { budget: 'maxCostUsd', limit: 0.00004, used: 0.00005 });
  assert.deepEqual(steps.map((s) => s.name), ['model', 'tool', 'model', 'over_budget']);
  const view = (await (await t.api.request(`/v1/runs/${id}`)).json()) as { usage: { costUsd: number } };
  assert.equal(view.usage.costUsd, 0.00005);
});

test('GET /v1/functions/:name shows the loop: model, budgets, approvals; the input schema takes a budget', async () => {
  const res = await t.api.request('/v1/functions/looper');
  const fn = (await res.json()) as { agent: unknown; steps: string[]; inputSchema: { properties: Record<string, unknown> } };
  assert.deepEqual(fn.agent, { model: null, maxTurns: 2, maxTokens: null, maxCostUsd: null, approve: [], approvalTimeoutMs: null });
  assert.deepEqual(fn.steps, ['model', 'tool', 'tool_results', 'over_budget']);
  assert.ok(fn.inputSchema.properties.budget, 'the per-run budget is part of the input');
});

test('a malformed budget in the input is a 400 naming the field', async () => {
  const res = await t.api.request('/v1/functions/looper/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task: 'x', budget: { maxTurns: 0 } }),
  });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /input\.budget\.maxTurns/);
});
