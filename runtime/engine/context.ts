/**
 * Builds the StepContext a step body receives, and records what the body did:
 * which external call it made (at most one: one LLM call or one tool call per step,
 * so every side effect sits behind its own checkpoint) and the tokens it used.
 */
import type { StepKind } from '../../schema/tables.ts';
import type { Agent, StepContext } from '../define.ts';
import { BatonError } from '../errors.ts';
import { createLlmClient } from '../llm/client.ts';
import { costUsd } from '../llm/prices.ts';
import { listDeclaredTools } from '../mcp/tool-list-cache.ts';
import type { StepUsage } from '../store/commit.ts';
import type { ClaimedStep } from '../store/claim.ts';
import type { StepCallRecord } from '../store/step-calls.ts';
import type { Platform } from '../platform.ts';
import { logTraceIds, noteUsage, traceLlmCalls, traceToolCall } from '../tracing.ts';
import { faultPoint } from './fault-points.ts';

export interface StepRecorder {
  kind: StepKind;
  calls: number;
  usage: StepUsage;
  /** The call's request and answer, kept as the attempt's `step_calls` row. */
  call: StepCallRecord | null;
}

export function createStepContext(
  p: Platform,
  agent: Agent,
  claimed: ClaimedStep,
  abortSignal: AbortSignal,
  deadline: number,
  /** Called once, just before the step's outside call (LLM or tool) goes out; the call waits for it (a claim). */
  onCall?: () => Promise<void> | void,
): { ctx: StepContext; recorder: StepRecorder } {
  const recorder: StepRecorder = { kind: 'compute', calls: 0, usage: { model: null, inputTokens: null, outputTokens: null, costUsd: null }, call: null };
  const where = { runId: claimed.runId, seq: claimed.seq, step: claimed.step };
  const beforeCall = (kind: StepKind, what: string) => {
    if (recorder.calls > 0) {
      throw new BatonError(
        'one_call_per_step',
        `step "${claimed.step}" made a second external call (${what}); give each LLM or tool call its own step`,
      );
    }
    recorder.calls++;
    recorder.kind = kind;
    return onCall?.();
  };
  // Made on the step's first ctx.log (a child logger serializes its fields at once; most steps never log).
  let log: ReturnType<typeof p.log.child> | undefined;
  const traceIds = logTraceIds();

  const llm = traceLlmCalls(createLlmClient({
    model: () => p.model.load(),
    modelId: p.model.id,
    resolveModel: (id) => p.model.byId(id),
    answersAs: (id) => p.model.answersAs(id),
    costUsd: (modelId, inputTokens, outputTokens) => costUsd(p.config.prices, modelId, inputTokens, outputTokens),
    abortSignal,
    step: claimed.step,
    beforeCall: async () => {
      await beforeCall('llm', 'llm');
      faultPoint('during-call', where);
    },
    onUsage: (usage, modelId) => {
      const inputTokens = usage.inputTokens ?? null;
      const outputTokens = usage.outputTokens ?? null;
      recorder.usage = { model: modelId, inputTokens, outputTokens, costUsd: costUsd(p.config.prices, modelId, inputTokens, outputTokens) };
      noteUsage(modelId, usage.inputTokens, usage.outputTokens, recorder.usage.costUsd);
      if (usage.inputTokens) p.metrics.tokens.inc({ function: agent.name, model: modelId, direction: 'input' }, usage.inputTokens);
      if (usage.outputTokens) p.metrics.tokens.inc({ function: agent.name, model: modelId, direction: 'output' }, usage.outputTokens);
    },
    onDelta: (text) => p.events.publish(claimed.runId, { type: 'delta', seq: claimed.seq, text }),
    onCall: (call) => {
      recorder.call = { kind: 'llm', ...call };
    },
  }));

  const ctx: StepContext = {
    function: agent.name,
    runId: claimed.runId,
    seq: claimed.seq,
    step: claimed.step,
    attempt: claimed.attempt,
    input: claimed.input,
    state: claimed.state,
    signal: claimed.signal,
    branch: claimed.branch,
    branches: claimed.branches,
    abortSignal,
    idempotencyKey: `${claimed.runId}:${claimed.seq}`,
    llm,
    async tool<T>(name: string, args: Record<string, unknown> = {}): Promise<T> {
      await beforeCall('tool', name);
      faultPoint('during-call', where);
      const request = { tool: name, args };
      let result: unknown;
      try {
        result = await traceToolCall(name, where, () =>
          p.tools.call({
            runId: claimed.runId,
            seq: claimed.seq,
            attempt: claimed.attempt,
            function: agent.name,
            tenant: claimed.tenant,
            scopes: agent.tools,
            name,
            args,
            abortSignal,
            deadline,
          }),
        );
      } catch (err) {
        recorder.call = { kind: 'tool', request, error: { message: (err as Error)?.message ?? String(err), code: (err as { code?: unknown })?.code } };
        throw err;
      }
      recorder.call = { kind: 'tool', request, response: result };
      faultPoint('after-call', where);
      return result as T;
    },
    listTools: () =>
      listDeclaredTools(p.tools, {
        runId: claimed.runId,
        seq: claimed.seq,
        function: agent.name,
        tenant: claimed.tenant,
        scopes: agent.tools,
        abortSignal,
        deadline,
      }),
    log: (message, fields) => {
      log ??= p.log.child({ runId: claimed.runId, seq: claimed.seq, step: claimed.step, function: agent.name, ...traceIds });
      log.info(fields ?? {}, message);
    },
  };
  return { ctx, recorder };
}
