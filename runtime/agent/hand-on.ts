/**
 * How a turn's tool calls run: the one place that decides it.
 *
 *   several calls, none awaiting approval → a fan-out (README "Fan-out and join"): each
 *     call is a branch, a `tool` step of its own that any worker may take, all at once;
 *     `tool_results` joins them, once, appending every result in the order of the calls
 *     (a branch that failed after its attempts becomes "tool X failed: …" for the model);
 *   one call, or any call awaiting approval → one `tool` step after another (`next` =
 *     0, 1, …), each appending its result; an approval parks the run between them.
 *
 * Either way the model has its next turn once every result is in the conversation.
 */
import type { ModelMessage } from 'ai';
import { append, next, parallel, type BranchOutcome, type StepResult } from '../define.ts';
import type { Patch } from '../state.ts';
import { type LoopState, type PendingCall, toolMessage } from './state.ts';
import { gatewayToolName } from './tool-names.ts';

export const MODEL_STEP = 'model';
export const TOOL_STEP = 'tool';
export const JOIN_STEP = 'tool_results';

/** After a model turn that asked for tools: run them. */
export function runToolCalls(calls: PendingCall[], patch: Patch, approve: readonly string[] = []): StepResult {
  const gated = calls.some((c) => approve.includes(gatewayToolName(c.toolName)));
  if (calls.length > 1 && !gated) {
    return parallel(
      calls.map((call) => ({ step: TOOL_STEP, input: call })),
      { join: JOIN_STEP, onBranchFailure: 'continue', patch: { ...patch, calls, next: 0 } },
    );
  }
  return next(TOOL_STEP, { ...patch, calls, next: 0 });
}

/** After one call's result (one after another): the next call, or the model's next turn. */
export function afterToolCall(state: LoopState, index: number, message: ModelMessage): StepResult {
  const calls = state.calls ?? [];
  if (index + 1 < calls.length) return next(TOOL_STEP, { messages: append(message), next: index + 1 });
  return next(MODEL_STEP, { messages: append(message), calls: [], next: 0 });
}

/** The join of a fan-out of calls: every result, in the order of the calls, then the model's turn. */
export function joinToolCalls(state: LoopState, branches: readonly BranchOutcome[]): StepResult {
  const calls = state.calls ?? [];
  const messages = branches.map((b) => {
    if (b.ok) return b.output as ModelMessage;
    const call = calls[b.index - 1];
    return toolMessage(call, { type: 'error-text', value: `tool ${call.toolName} failed: ${b.error?.message ?? 'unknown error'}` });
  });
  return next(MODEL_STEP, { messages: append(...messages), calls: [], next: 0 });
}
