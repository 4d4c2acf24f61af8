/**
 * `ctx.llm`: the AI SDK's generateText / streamText with the step's model, abort
 * signal and bookkeeping filled in. Usage is recorded on the step row; a streaming
 * call publishes its token deltas to the run's event stream as they arrive.
 *
 * Exactly one request per call: the one-call rule is checked first (one-call.ts),
 * the SDK's own retries are off (`maxRetries: 0`; the engine retries steps), and a
 * provider's error is mapped to a retryable or final `llm_error` (provider-errors.ts).
 * Tool calls the model asks for are returned, never executed here.
 */
import { generateText, streamText } from 'ai';
import type { LanguageModel, LanguageModelUsage } from 'ai';
import { llmError } from './provider-errors.ts';
import { refuseMoreThanOneCall } from './one-call.ts';

type GenerateParams = Parameters<typeof generateText>[0];
type StreamParams = Parameters<typeof streamText>[0];

/** Options as for the AI SDK, minus what the runtime supplies (`model` may still be overridden). */
export type GenerateOptions = Omit<GenerateParams, 'model' | 'abortSignal'> & { model?: LanguageModel };
export type StreamOptions = Omit<StreamParams, 'model' | 'abortSignal'> & { model?: LanguageModel };

export type GenerateResult = Awaited<ReturnType<typeof generateText>>;

export interface StreamedText {
  text: string;
  usage: LanguageModelUsage;
  finishReason: string;
  toolCalls: Array<{ toolCallId: string; toolName: string; input: unknown }>;
}

export interface LlmClient {
  /** The model's id, e.g. `gpt-4o-mini` or `baton-offline`. */
  readonly modelId: string;
  generateText(options: GenerateOptions): Promise<GenerateResult>;
  /** Streams (deltas go to the run's event stream) and resolves with the whole answer. */
  streamText(options: StreamOptions): Promise<StreamedText>;
}

export interface LlmHooks {
  model: LanguageModel;
  modelId: string;
  abortSignal: AbortSignal;
  /** The step's name, for errors. */
  step: string;
  /** Called before the call is made (enforces one external call per step). */
  beforeCall(): void;
  onUsage(usage: LanguageModelUsage, modelId: string): void;
  onDelta(text: string): void;
  /** What was sent and what came back (or the error), for the step's `step_calls` row. */
  onCall?(call: { request: unknown; response?: unknown; error?: unknown }): void;
}

/** The parts of a call's options worth showing: what the model was asked, not the SDK plumbing. */
function requestOf(options: GenerateOptions | StreamOptions, modelId: string) {
  const o = options as Record<string, unknown>;
  const tools = o.tools && typeof o.tools === 'object' ? Object.keys(o.tools) : undefined;
  const pick: Record<string, unknown> = { model: modelId };
  for (const k of ['instructions', 'system', 'prompt', 'messages', 'toolChoice', 'temperature', 'maxOutputTokens']) {
    if (o[k] !== undefined) pick[k] = o[k];
  }
  if (tools) pick.tools = tools;
  return pick;
}

const errorOf = (err: unknown) => ({ message: err instanceof Error ? err.message : String(err) });

export function createLlmClient(h: LlmHooks): LlmClient {
  const idOf = (m: LanguageModel | undefined) => (m === undefined ? h.modelId : typeof m === 'string' ? m : m.modelId);
  return {
    modelId: h.modelId,
    async generateText(options) {
      refuseMoreThanOneCall(h.step, options);
      h.beforeCall();
      const request = requestOf(options, idOf(options.model));
      let result: GenerateResult;
      try {
        result = await generateText({ ...options, model: options.model ?? h.model, abortSignal: h.abortSignal, maxRetries: 0 } as GenerateParams);
      } catch (err) {
        h.onCall?.({ request, error: errorOf(err) });
        throw llmError(err);
      }
      h.onUsage(result.usage, idOf(options.model));
      h.onCall?.({
        request,
        response: {
          text: result.text,
          toolCalls: result.toolCalls.map((c) => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
          finishReason: result.finishReason,
          usage: { inputTokens: result.usage.inputTokens, outputTokens: result.usage.outputTokens },
        },
      });
      return result;
    },
    async streamText(options) {
      refuseMoreThanOneCall(h.step, options);
      h.beforeCall();
      let failure: unknown;
      const result = streamText({
        ...options,
        model: options.model ?? h.model,
        abortSignal: h.abortSignal,
        maxRetries: 0,
        onError: ({ error }: { error: unknown }) => {
          failure = error;
        },
      } as StreamParams);
      // Batch deltas (~50 ms) so a fast model does not send one message per token.
      let buffer = '';
      let last = Date.now();
      for await (const delta of result.textStream) {
        buffer += delta;
        if (Date.now() - last >= 50) {
          h.onDelta(buffer);
          buffer = '';
          last = Date.now();
        }
      }
      if (buffer) h.onDelta(buffer);
      const request = requestOf(options, idOf(options.model));
      if (failure) {
        h.onCall?.({ request, error: errorOf(failure) });
        throw llmError(failure);
      }
      h.abortSignal.throwIfAborted();
      const [text, usage, finishReason, toolCalls] = await Promise.all([
        result.text,
        result.usage,
        result.finishReason,
        result.toolCalls,
      ]);
      h.onUsage(usage, idOf(options.model));
      const answer = {
        text,
        usage,
        finishReason,
        toolCalls: toolCalls.map((c) => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
      };
      h.onCall?.({
        request,
        response: { text, toolCalls: answer.toolCalls, finishReason, usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens } },
      });
      return answer;
    },
  };
}
