/**
 * The agent loop, built from the same primitives as any hand-wired function: three
 * steps and the run's state.
 *
 *   model        (llm)  one model turn: answer → done; tool calls → `tool` (hand-on.ts)
 *   tool         (tool) one tool call: a branch of the turn's fan-out, or one after another
 *   tool_results        joins a fan-out: every result appended, in call order → `model`
 *   over_budget         fails the run `budget_exceeded` after a turn that went over
 *
 * `defineAgent({ agent: { … } })` uses it; `agentLoop(options)` hands the steps to an
 * author who wants them inside a graph of their own.
 */
import * as v from 'valibot';
import { BatonError } from '../errors.ts';
import { done, next, type StepContext, type StepDefinition, type StepResult } from '../define.ts';
import type { State } from '../state.ts';
import { BudgetOverride } from './budget.ts';
import { afterToolCall, JOIN_STEP, joinToolCalls, MODEL_STEP, TOOL_STEP } from './hand-on.ts';
import { BUDGET_STEP, modelTurn } from './model-turn.ts';
import { type LoopState, type PendingCall, toolMessage } from './state.ts';
import { TOOL_ATTEMPTS, toolCall } from './tool-call.ts';

export interface LoopOptions<I = unknown> {
  /** The system instructions (or a function of the run's input). */
  instructions: string | ((input: I) => string);
  /** The first user message, built from the run's input. */
  prompt: (input: I) => string;
  /** A model id of the configured provider (default: BATON_MODEL, or the offline model). */
  model?: string;
  /** Stream each turn (its text reaches the run's event stream as it is written); default true. */
  stream?: boolean;
  /** Model turns a run may take (default 20). */
  maxTurns?: number;
  /** Input + output tokens over every model call of a run. */
  maxTokens?: number;
  /** US dollars over every model call of a run (BATON_PRICES). */
  maxCostUsd?: number;
  /** Tools (`server.tool`) that wait for a person's approval before each call. */
  approve?: readonly string[];
  /** An approval not given in this time rejects the call. */
  approvalTimeoutMs?: number;
  /** Per-step timeouts (default: the function's). */
  modelTimeoutMs?: number;
  toolTimeoutMs?: number;
}

export interface AgentLoop {
  start: string;
  steps: Record<string, StepDefinition<unknown, State>>;
}

export function agentLoop<I>(opts: LoopOptions<I>, tools: Readonly<Record<string, readonly string[]>>, fn = 'agent'): AgentLoop {
  const o = opts as LoopOptions<unknown>;
  for (const name of o.approve ?? []) {
    const [server, tool] = name.split('.');
    if (!tools[server]?.includes(tool)) throw new Error(`defineAgent(${fn}): approve names "${name}", which is not in its tools`);
  }
  if (o.maxTurns !== undefined && (!Number.isInteger(o.maxTurns) || o.maxTurns < 1)) throw new Error(`defineAgent(${fn}): maxTurns must be a whole number ≥ 1`);
  return {
    start: MODEL_STEP,
    steps: {
      [MODEL_STEP]: { run: (ctx) => modelTurn(ctx, o), timeoutMs: o.modelTimeoutMs },
      [TOOL_STEP]: { run: (ctx) => runTool(ctx, o), timeoutMs: o.toolTimeoutMs, maxAttempts: TOOL_ATTEMPTS },
      [JOIN_STEP]: { run: (ctx) => joinToolCalls(ctx.state as LoopState, ctx.branches ?? []) },
      [BUDGET_STEP]: {
        run: (ctx) => {
          const e = (ctx.state as LoopState).budgetError;
          throw new BatonError('budget_exceeded', e?.message ?? 'a budget was exceeded', { details: e?.details });
        },
      },
    },
  };
}

async function runTool(ctx: StepContext, opts: LoopOptions): Promise<StepResult> {
  if (ctx.branch) {
    // A branch of the turn's fan-out: its result is its output; the join appends them in order.
    const call = ctx.branch.input as PendingCall;
    const output = await toolCall(ctx, call, opts);
    if (output.type === 'wait') throw new BatonError('invalid_step_result', `tool ${call.toolName} awaits approval and cannot run in a fan-out`);
    ctx.log(output.type === 'json' || output.type === 'text' ? 'tool call answered' : 'tool call failed', { tool: call.toolName, branch: ctx.branch.index, of: ctx.branch.of });
    return done(toolMessage(call, output));
  }
  const state = ctx.state as LoopState;
  const index = state.next ?? 0;
  const call = state.calls?.[index];
  if (!call) return next(MODEL_STEP, { calls: [], next: 0 });
  const output = await toolCall(ctx, call, opts);
  if ('type' in output && output.type === 'wait') return output;
  const message = toolMessage(call, output as Exclude<typeof output, { type: 'wait' }>);
  const ok = output.type === 'json' || output.type === 'text';
  ctx.log(ok ? 'tool call answered' : 'tool call failed', { tool: call.toolName, call: index + 1, of: state.calls?.length });
  return afterToolCall(state, index, message);
}

/** The run's input, plus the optional per-run `budget` override an agent accepts. */
export function withBudgetInput(schema: v.GenericSchema): v.GenericSchema {
  const s = schema as v.GenericSchema & { type?: string; entries?: v.ObjectEntries };
  if (!s.entries || !['object', 'loose_object', 'strict_object'].includes(s.type ?? '')) return schema;
  if ('budget' in s.entries) return schema;
  const entries = { ...s.entries, budget: BudgetOverride };
  return s.type === 'strict_object' ? v.strictObject(entries) : s.type === 'loose_object' ? v.looseObject(entries) : v.object(entries);
}
