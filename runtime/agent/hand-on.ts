/**
 * How a turn's tool calls run: the one place that decides it. Today each call is its own
 * step, one after another (`tool` at next = 0, 1, …), each appending its result; after
 * the last, the model has its turn again.
 */
import { append, next, type StepResult } from '../define.ts';
import type { ModelMessage } from 'ai';
import type { LoopState, PendingCall } from './state.ts';
import type { Patch } from '../state.ts';

export const MODEL_STEP = 'model';
export const TOOL_STEP = 'tool';

/** After a model turn that asked for tools: run them. */
export function runToolCalls(calls: PendingCall[], patch: Patch): StepResult {
  return next(TOOL_STEP, { ...patch, calls, next: 0 });
}

/** After one call's result: the next call, or the model's next turn. */
export function afterToolCall(state: LoopState, index: number, message: ModelMessage): StepResult {
  const calls = state.calls ?? [];
  if (index + 1 < calls.length) return next(TOOL_STEP, { messages: append(message), next: index + 1 });
  return next(MODEL_STEP, { messages: append(message), calls: [], next: 0 });
}
