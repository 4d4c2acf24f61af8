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
import type { LanguageModel, LanguageModelUsage, ModelMessage } from 'ai';
import { type Ai, loadAi } from './ai-sdk.ts';
import { llmError } from './provider-errors.ts';
import { refuseMoreThanOneCall } from './one-call.ts';

type GenerateParams = Parameters<Ai['generateText']>[0];
type StreamParams = Parameters<Ai['streamText']>[0];

/**
 * Options as for the AI SDK, minus what the runtime supplies. `model` may still be
 * overridden: a model id (e.g. `gpt-4o`) is served by the configured provider (never by
 * the SDK's global default), a LanguageModel is used as it is.
 */
export type GenerateOptions = Omit<GenerateParams, 'model' | 'abortSignal'> & { model?: LanguageModel | string };
export type StreamOptions = Omit<StreamParams, 'model' | 'abortSignal'> & { model?: LanguageModel | string };

export type GenerateResult = Awaited<ReturnType<Ai['generateText']>>;

export interface StreamedText {
  text: string;
  usage: LanguageModelUsage;
  finishReason: string;
  toolCalls: Array<{ toolCallId: string; toolName: string; input: unknown }>;
  /** The messages this answer adds to a conversation (the assistant's text and tool calls). */
  responseMessages: ModelMessage[];
}

export interface LlmClient {
  /** The model's id, e.g. `gpt-4o-mini` or `baton-offline`. */
  readonly modelId: string;
  generateText(options: GenerateOptions): Promise<GenerateResult>;
  /** Streams (deltas go to the run's event stream) and resolves with the whole answer. */
  streamText(options: StreamOptions): Promise<StreamedText>;
  /** What a call with this usage cost in US dollars (BATON_PRICES), or null when the model has no price. */
  costUsd(usage: LanguageModelUsage, model?: LanguageModel | string): number | null;
}

export interface LlmHooks {
  /** The configured model (its provider's SDK loads on the first call). */
  model(): Promise<LanguageModel>;
  modelId: string;
  abortSignal: AbortSignal;
  /** The step's name, for errors. */
  step: string;
  /** A model id → the configured provider's model. */
  resolveModel(id: string): Promise<LanguageModel>;
  /** The id of the model that answers when `id` is asked for (offline: the offline model's). */
  answersAs(id: string): string;
  costUsd(modelId: string, inputTokens: number | null, outputTokens: number | null): number | null;
  /** Called before the call is made (enforces one external call per step). */
  beforeCall(): Promise<void> | void;
  onUsage(usage: LanguageModelUsage, modelId: string): void;
  onDelta(text: string): void;
  /** What was sent and what came back (or the error), for the step's `step_calls` row. */
  onCall?(call: { request: unknown; response?: unknown; error?: unknown }): void;
}

const RECORDED_MESSAGES = 12;

/** The parts of a call's options worth showing: what the model was asked, not the SDK plumbing. */
function requestOf(options: GenerateOptions | StreamOptions, modelId: string) {
  const o = options as Record<string, unknown>;
  const tools = o.tools && typeof o.tools === 'object' ? Object.keys(o.tools) : undefined;
  const pick: Record<string, unknown> = { model: modelId };
  for (const k of ['instructions', 'system', 'prompt', 'messages', 'toolChoice', 'temperature', 'maxOutputTokens']) {
    if (o[k] !== undefined) pick[k] = o[k];
  }
  // An agent sends its whole conversation every turn: keeping only the latest messages keeps the
  // record's size per step flat instead of growing with the run (the rest is in the state it saw).
  if (Array.isArray(pick.messages) && pick.messages.length > RECORDED_MESSAGES) {
    pick.earlierMessages = pick.messages.length - RECORDED_MESSAGES;
    pick.messages = pick.messages.slice(-RECORDED_MESSAGES);
  }
  if (tools) pick.tools = tools;
  return pick;
}

const errorOf = (err: unknown) => ({ message: err instanceof Error ? err.message : String(err) });

export function createLlmClient(h: LlmHooks): LlmClient {
  const modelOf = (m: LanguageModel | string | undefined): Promise<LanguageModel> =>
    m === undefined ? h.model() : typeof m === 'string' ? h.resolveModel(m) : Promise.resolve(m);
  // The id of the model that really answers (offline, every id is the offline model).
  const idOf = (m: LanguageModel | string | undefined) => (m === undefined ? h.modelId : typeof m === 'string' ? h.answersAs(m) : m.modelId);
  // The SDK and the model, loaded on the first call.
  const sdkAnd = (m: LanguageModel | string | undefined) => Promise.all([loadAi(), modelOf(m)]);
  return {
    modelId: h.modelId,
    costUsd: (usage, model) => h.costUsd(idOf(model), usage.inputTokens ?? null, usage.outputTokens ?? null),
    async generateText(options) {
      refuseMoreThanOneCall(h.step, options);
      await h.beforeCall();
      const request = requestOf(options, idOf(options.model));
      const [ai, model] = await sdkAnd(options.model);
      let result: GenerateResult;
      try {
        result = await ai.generateText({ ...options, model, abortSignal: h.abortSignal, maxRetries: 0 } as GenerateParams);
      } catch (err) {
        h.onCall?.({ request, error: errorOf(err) });
        throw llmError(err, ai);
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
      await h.beforeCall();
      let failure: unknown;
      const [ai, model] = await sdkAnd(options.model);
      const result = ai.streamText({
        ...options,
        model,
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
        throw llmError(failure, ai);
      }
      h.abortSignal.throwIfAborted();
      const [text, usage, finishReason, toolCalls, responseMessages] = await Promise.all([
        result.text,
        result.usage,
        result.finishReason,
        result.toolCalls,
        result.responseMessages,
      ]);
      h.onUsage(usage, idOf(options.model));
      const answer = {
        text,
        usage,
        finishReason,
        toolCalls: toolCalls.map((c) => ({ toolCallId: c.toolCallId, toolName: c.toolName, input: c.input })),
        responseMessages,
      };
      h.onCall?.({
        request,
        response: { text, toolCalls: answer.toolCalls, finishReason, usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens } },
      });
      return answer;
    },
  };
}
