/**
 * One tool call the model asked for, one `tool` step: through the gateway (scopes,
 * capability token, audit), with `run_id:seq` as its idempotency key, so a step run
 * again after a crash never repeats the side effect. Whatever happens becomes the tool's
 * result for the model, not a crash of the run: an undeclared tool (refused and audited
 * `denied` by the gateway), an error the tool reported, a person's rejection. Only a
 * transient failure (the server unreachable) is retried, and after the last attempt the
 * model is told about it too.
 *
 * Tools listed in `approve` park the run first: `wait('approval')`, holding no worker,
 * with the call (tool and arguments) as what it waits for; the approval signal resumes
 * this same step, which then runs the call or returns "rejected by a person: …".
 */
import { type StepContext, wait, type WaitResult } from '../define.ts';
import { coerceError } from '../errors.ts';
import type { LoopOptions } from './loop.ts';
import type { PendingCall, ToolOutput } from './state.ts';
import { gatewayToolName } from './tool-names.ts';

export const APPROVAL_SIGNAL = 'approval';
export const TOOL_ATTEMPTS = 3;

export interface ApprovalRequest {
  kind: 'approval';
  tool: string;
  args: unknown;
  toolCallId: string;
  timeoutMs: number | null;
}

const failed = (value: string): ToolOutput => ({ type: 'error-text', value });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function toolCall(ctx: StepContext, call: PendingCall, opts: LoopOptions): Promise<ToolOutput | WaitResult> {
  const name = gatewayToolName(call.toolName);
  if (opts.approve?.includes(name)) {
    const decision = ctx.signal?.name === APPROVAL_SIGNAL ? ctx.signal : undefined;
    if (!decision) {
      const request: ApprovalRequest = { kind: 'approval', tool: name, args: call.input, toolCallId: call.toolCallId, timeoutMs: opts.approvalTimeoutMs ?? null };
      ctx.log('tool call waits for approval', { tool: name });
      return wait(APPROVAL_SIGNAL, { next: ctx.step, timeoutMs: opts.approvalTimeoutMs, request });
    }
    if (decision.timedOut) return failed(`rejected: nobody approved the call within ${opts.approvalTimeoutMs} ms`);
    const payload = decision.payload as { approve?: unknown; note?: unknown } | null;
    if (payload?.approve !== true) {
      const note = typeof payload?.note === 'string' && payload.note.trim() ? payload.note.trim() : 'no reason given';
      return failed(`rejected by a person: ${note}`);
    }
  }
  if (!isObject(call.input)) return failed(`tool ${call.toolName} was not called: its arguments must be a JSON object`);
  try {
    const value = await ctx.tool(name, call.input);
    return typeof value === 'string' ? { type: 'text', value } : { type: 'json', value: (value ?? null) as never };
  } catch (err) {
    if (ctx.abortSignal.aborted) throw err;
    const e = coerceError(err);
    if (e.code === 'tool_denied') return failed(`tool ${call.toolName} is not available to this agent: ${e.message}`);
    if (e.code === 'tool_error') return failed(`tool ${call.toolName} failed: ${e.message}`);
    if (e.retryable && ctx.attempt < TOOL_ATTEMPTS) throw err;
    return failed(`tool ${call.toolName} failed: ${e.message}`);
  }
}
