/**
 * One model turn, one `llm` step: the model reads the conversation and the declared
 * tools (listed from their MCP servers, handed over without `execute`, so nothing runs
 * inside this step) and answers, or asks for tool calls. The turn's messages are
 * appended to the conversation; the calls are handed on, each to a step of its own.
 */
import type { ModelMessage, ToolSet } from 'ai';
import { loadAi } from '../llm/ai-sdk.ts';
import { append, done, next, type StepContext, type StepResult } from '../define.ts';
import { checkBeforeTurn, checkSpent, resolveBudget, type BudgetOverride, type Spent } from './budget.ts';
import { runToolCalls } from './hand-on.ts';
import type { LoopOptions } from './loop.ts';
import { NOTHING_SPENT, type LoopState, type PendingCall } from './state.ts';
import { modelToolName } from './tool-names.ts';

export const BUDGET_STEP = 'over_budget';

export async function modelTurn(ctx: StepContext, opts: LoopOptions): Promise<StepResult> {
  const state = ctx.state as LoopState;
  const input = ctx.input as { budget?: BudgetOverride };
  const budget = resolveBudget(opts, input?.budget);
  const spent = state.usage ?? NOTHING_SPENT;
  const over = checkBeforeTurn(budget, spent);
  if (over) throw over;

  // The first turn opens the conversation with the user's message.
  const opening: ModelMessage[] = state.messages?.length ? [] : [{ role: 'user', content: opts.prompt(ctx.input) }];
  const messages = [...(state.messages ?? []), ...opening];
  const [definitions, { jsonSchema, tool }] = await Promise.all([ctx.listTools(), loadAi()]);
  const tools: ToolSet = Object.fromEntries(
    definitions.map((d) => [modelToolName(d.server, d.tool), tool({ description: d.description, inputSchema: jsonSchema(d.inputSchema) })]),
  );
  const instructions = typeof opts.instructions === 'function' ? opts.instructions(ctx.input) : opts.instructions;
  const request = { ...(opts.model ? { model: opts.model } : {}), instructions, messages, ...(definitions.length ? { tools } : {}) };
  const result = opts.stream === false ? await ctx.llm.generateText(request) : await ctx.llm.streamText(request);

  const cost = ctx.llm.costUsd(result.usage, opts.model);
  const now: Spent = {
    turns: spent.turns + 1,
    inputTokens: spent.inputTokens + (result.usage.inputTokens ?? 0),
    outputTokens: spent.outputTokens + (result.usage.outputTokens ?? 0),
    costUsd: cost === null || spent.costUsd === null ? null : spent.costUsd + cost,
  };
  // Only the model's own message: the SDK answers a call of an unknown tool with a result
  // of its own, but every call, declared or not, goes to the gateway (and its audit).
  const answer = result.responseMessages.filter((m) => m.role === 'assistant');
  const patch = { messages: append(...opening, ...answer), usage: now };
  const overAfter = checkSpent(budget, now);
  if (overAfter) return next(BUDGET_STEP, { ...patch, budgetError: overAfter.toJSON() });

  const calls: PendingCall[] = result.toolCalls.map((c) => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input }));
  if (calls.length === 0) return done({ answer: result.text, turns: now.turns, usage: now }, patch);
  ctx.log('model asked for tools', { turn: now.turns, tools: calls.map((c) => c.toolName) });
  return runToolCalls(calls, patch, opts.approve);
}
