/**
 * The runtime's spans (README "Observability"): one trace per run.
 *
 *   run <function>            API, when the run is created: the root. Its `traceparent` is
 *   │                         stored on the run (`runs.trace_context`) and carried by
 *   │                         every wake-up message. Trace id = the run id (dashes
 *   │                         dropped), unless the request carried a `traceparent`:
 *   │                         then the run joins the caller's trace.
 *   ├─ dispatch <function>    a Knative dispatcher's POST /invoke (its header is the parent)
 *   │  └─ step <name>
 *   └─ step <name>            one per attempt, in whichever process ran it: function, step,
 *      │                      seq, attempt, kind, outcome, model, tokens and cost, tool
 *      ├─ chat <model>        the LLM call, with its tokens
 *      └─ tools/call <tool>   the MCP call; the tool server's span is its child
 *
 * With tracing off every function here returns at its first line.
 */
import { type Attributes, type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { LanguageModelUsage } from 'ai';
import { contextFromHeaders, contextFromTraceparent, traceparentOf, tracingOn, withTraceId } from '../tools/lib/tracing.ts';
import type { LlmClient } from './llm/client.ts';

export const ATTR = {
  runId: 'baton.run_id',
  function: 'baton.function',
  step: 'baton.step',
  seq: 'baton.seq',
  attempt: 'baton.attempt',
  branch: 'baton.branch',
  kind: 'baton.step.kind',
  outcome: 'baton.outcome',
  worker: 'baton.worker',
  tool: 'baton.tool',
  model: 'gen_ai.request.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  costUsd: 'baton.cost_usd',
} as const;

const tracer = () => trace.getTracer('baton');

/** A run id as a trace id: a UUID's 32 hex digits. */
const traceIdOf = (runId: string) => runId.replaceAll('-', '').toLowerCase();

function startSpan(name: string, runId: string, parent: Context | null, kind: SpanKind, attributes: Attributes, startTime?: number): Span {
  const options = { kind, attributes, ...(startTime ? { startTime } : {}) };
  if (parent) return tracer().startSpan(name, options, parent);
  return withTraceId(traceIdOf(runId), () => tracer().startSpan(name, options, ROOT_CONTEXT));
}

/** API: the root span of a new run, and the `traceparent` to store on it (null with tracing off). */
export function startRunSpan(headers: Headers, fn: string, runId: string): { span: Span; traceparent: string | null } | null {
  if (!tracingOn()) return null;
  const span = startSpan(`run ${fn}`, runId, contextFromHeaders(headers), SpanKind.SERVER, { [ATTR.runId]: runId, [ATTR.function]: fn });
  return { span, traceparent: traceparentOf(span) };
}

export interface StepSpanInput {
  runId: string;
  function: string;
  step: string;
  seq: number;
  attempt: number;
  /** A fan-out branch's index (from 1), when the step is one. */
  branch?: number | undefined;
  worker: string;
  /** The run's root `traceparent` (queue message or `runs.trace_context`). */
  runTrace: string | null;
  /** A closer parent than the run's root: the dispatcher's span, from POST /invoke's header. */
  parent?: Context | null | undefined;
  /** Epoch ms: when the claim began. */
  startTime: number;
}

/** Worker or function app: the span of one step attempt (null with tracing off). */
export function startStepSpan(s: StepSpanInput): Span | null {
  if (!tracingOn()) return null;
  const parent = s.parent ?? contextFromTraceparent(s.runTrace);
  return startSpan(
    `step ${s.step}`,
    s.runId,
    parent,
    SpanKind.CONSUMER,
    {
      [ATTR.runId]: s.runId,
      [ATTR.function]: s.function,
      [ATTR.step]: s.step,
      [ATTR.seq]: s.seq,
      [ATTR.attempt]: s.attempt,
      [ATTR.worker]: s.worker,
      ...(s.branch !== undefined ? { [ATTR.branch]: s.branch } : {}),
    },
    s.startTime,
  );
}

/** Runs `fn` with `span` active, so what it calls (tool calls, user code) nests under it. */
export function inSpan<T>(span: Span | null, fn: () => Promise<T>): Promise<T> {
  return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
}

/** Ends a step span with its outcome; statuses other than committed and skipped are errors. */
export function endStepSpan(span: Span | null, outcome: { status: string; error?: string } | null, thrown?: unknown): void {
  if (!span) return;
  if (outcome) {
    span.setAttribute(ATTR.outcome, outcome.status);
    if (outcome.status !== 'committed') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error ?? outcome.status });
  } else {
    span.setAttribute(ATTR.outcome, 'error');
    span.recordException(thrown instanceof Error ? thrown : String(thrown));
    span.setStatus({ code: SpanStatusCode.ERROR, message: (thrown as Error)?.message ?? String(thrown) });
  }
  span.end();
}

/** `trace_id` and `span_id` of the active span, for a log line to point at it (nothing with tracing off). */
export function logTraceIds(): { trace_id?: string; span_id?: string } {
  if (!tracingOn()) return {};
  const sc = trace.getActiveSpan()?.spanContext();
  return sc ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

/** Notes on the active step span: what kind of call the step made. */
export function noteKind(kind: string): void {
  if (tracingOn()) trace.getActiveSpan()?.setAttribute(ATTR.kind, kind);
}

/** Notes on the active step span: the model, its tokens and what they cost (when priced). */
export function noteUsage(model: string, inputTokens: number | undefined, outputTokens: number | undefined, costUsd: number | null): void {
  if (!tracingOn()) return;
  const span = trace.getActiveSpan();
  span?.setAttribute(ATTR.model, model);
  if (inputTokens !== undefined) span?.setAttribute(ATTR.inputTokens, inputTokens);
  if (outputTokens !== undefined) span?.setAttribute(ATTR.outputTokens, outputTokens);
  if (costUsd !== null) span?.setAttribute(ATTR.costUsd, costUsd);
}

/**
 * `ctx.llm` with each call as a client span under the step span (`chat <model>`, with
 * its tokens): the step span's time minus this one is Baton's (claim, commit, hand-on).
 */
export function traceLlmCalls(client: LlmClient): LlmClient {
  if (!tracingOn()) return client;
  const modelOf = (m: unknown) => (typeof m === 'string' ? m : ((m as { modelId?: string } | undefined)?.modelId ?? client.modelId));
  return {
    modelId: client.modelId,
    costUsd: (usage, model) => client.costUsd(usage, model),
    generateText: (options) => llmSpan(modelOf(options.model), () => client.generateText(options)),
    streamText: (options) => llmSpan(modelOf(options.model), () => client.streamText(options)),
  };
}

async function llmSpan<T extends { usage: LanguageModelUsage }>(model: string, call: () => Promise<T>): Promise<T> {
  // Not made active: the usage the call reports lands on the step span (noteUsage).
  const span = tracer().startSpan(`chat ${model}`, { kind: SpanKind.CLIENT, attributes: { 'gen_ai.operation.name': 'chat', [ATTR.model]: model } });
  try {
    const result = await call();
    if (result.usage.inputTokens !== undefined) span.setAttribute(ATTR.inputTokens, result.usage.inputTokens);
    if (result.usage.outputTokens !== undefined) span.setAttribute(ATTR.outputTokens, result.usage.outputTokens);
    return result;
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A tool call (`server.tool`) as a client span under the active step span; the
 * gateway sends its `traceparent`, so the tool server's span is its child.
 */
export async function traceToolCall<T>(name: string, where: { runId: string; seq: number }, call: () => Promise<T>): Promise<T> {
  if (!tracingOn()) return call();
  trace.getActiveSpan()?.setAttribute(ATTR.tool, name);
  const tool = name.slice(name.indexOf('.') + 1);
  const span = tracer().startSpan(`tools/call ${tool}`, {
    kind: SpanKind.CLIENT,
    attributes: { [ATTR.tool]: name, 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': tool, [ATTR.runId]: where.runId, [ATTR.seq]: where.seq },
  });
  try {
    return await context.with(trace.setSpan(context.active(), span), call);
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** Dispatcher: a client span for POST /invoke under the run's root (null with tracing off or no context). */
export function startDispatchSpan(fn: string, runId: string, seq: number, runTrace: string | undefined): { span: Span; ctx: Context } | null {
  if (!tracingOn()) return null;
  const parent = contextFromTraceparent(runTrace);
  if (!parent) return null;
  const span = tracer().startSpan(`dispatch ${fn}`, { kind: SpanKind.CLIENT, attributes: { [ATTR.runId]: runId, [ATTR.function]: fn, [ATTR.seq]: seq } }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}
