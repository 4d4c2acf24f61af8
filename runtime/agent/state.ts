/**
 * What an agent loop keeps in the run's state (README "Agents"):
 *   messages — the conversation (AI SDK ModelMessages), appended turn by turn and call by
 *              call with `append(...)`, so each step writes only what it added;
 *   usage    — turns, tokens and cost spent so far (the budgets' measure);
 *   calls    — the tool calls the model asked for in its latest turn, and
 *   next     — which of them runs next.
 */
import type { ModelMessage, ToolResultPart } from 'ai';
import type { Spent } from './budget.ts';

export interface PendingCall {
  toolCallId: string;
  /** As the model named it: `<server>_<tool>`. */
  toolName: string;
  input: unknown;
}

export interface LoopState extends Record<string, unknown> {
  messages?: ModelMessage[];
  usage?: Spent;
  calls?: PendingCall[];
  next?: number;
  /** Set by a turn that went over a budget, for the step that fails the run. */
  budgetError?: { code: string; message: string; details?: unknown };
}

export const NOTHING_SPENT: Spent = { turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };

export type ToolOutput = ToolResultPart['output'];

/** The tool message that answers one call. */
export function toolMessage(call: PendingCall, output: ToolOutput): ModelMessage {
  return { role: 'tool', content: [{ type: 'tool-result', toolCallId: call.toolCallId, toolName: call.toolName, output }] };
}
