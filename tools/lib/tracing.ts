/**
 * Traces (OpenTelemetry) for every Baton process: API, workers, function apps and the
 * tool servers (which import nothing from the runtime, so this lives with them and the
 * runtime uses it too). README "Observability".
 *
 * Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
 * set. Off, the SDK is never loaded: @opentelemetry/api hands out no-op spans and the
 * engine checks a boolean at each span site. On, spans are batched to the OTLP/HTTP (JSON)
 * endpoint, and the W3C `traceparent` carries the context between processes: in HTTP
 * headers (the API, tool calls, a dispatcher's POST /invoke), in queue messages, and
 * on the run's row, so a step run after any crash still joins its run's trace.
 */
import { randomBytes } from 'node:crypto';
import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  TraceFlags,
  context,
  diag,
  isSpanContextValid,
  propagation,
  trace,
} from '@opentelemetry/api';
import type * as Sdk from '@opentelemetry/sdk-trace';

/** What a started SDK must offer to be flushed and stopped. */
export interface TracingProvider {
  getTracer(name: string, version?: string): ReturnType<typeof trace.getTracer>;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

let provider: TracingProvider | null = null;
/** Trace id the next root span takes (see withTraceId); consumed by the id generator. */
let requestedTraceId: string | null = null;

/** True when the environment asks for traces. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/** True once this process records spans. */
export function tracingOn(): boolean {
  return provider !== null;
}

/**
 * Starts the SDK when the environment asks for traces (else does nothing and loads
 * nothing). `serviceName` is this process's role (`baton-api`, `baton-tool-git`, …);
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override and add to it.
 * Returns whether tracing is on.
 */
export async function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (provider) return true;
  if (!tracingConfigured(env)) return false;
  const [sdk, { OTLPTraceExporter }, resources, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
  ]);
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (protocol && protocol !== 'http/json') {
    process.stderr.write(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}: Baton exports OTLP over HTTP as JSON (http/json) only\n`);
  }
  const resource = resources
    .resourceFromAttributes({ 'service.name': serviceName, 'service.namespace': 'baton' })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const started = new sdk.TracerProvider({
    resource,
    sampler: samplerFrom(sdk, env),
    idGenerator: traceIds,
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter: new OTLPTraceExporter(),
        scheduledDelayMillis: positive(env.OTEL_BSP_SCHEDULE_DELAY) ?? 1000,
        exportTimeoutMillis: positive(env.OTEL_BSP_EXPORT_TIMEOUT) ?? 10_000,
        maxQueueSize: positive(env.OTEL_BSP_MAX_QUEUE_SIZE) ?? 8192,
      }),
    ],
  });
  useTracingProvider(started, {
    contextManager: new AsyncLocalStorageContextManager().enable(),
    propagator: new W3CTraceContextPropagator(),
  });
  return true;
}

/**
 * Span and trace ids, except that a root span started by withTraceId takes the trace
 * id asked for. A provider built elsewhere (a test's, an embedder's) passes this as
 * its `idGenerator` for a run's trace id to be its run id.
 */
export const traceIds = {
  generateTraceId(): string {
    const id = requestedTraceId ?? randomBytes(16).toString('hex');
    requestedTraceId = null;
    return id;
  },
  generateSpanId(): string {
    return randomBytes(8).toString('hex');
  },
};

/** Registers a provider as this process's (startTracing does; tests pass one with an in-memory exporter). */
export function useTracingProvider(
  p: TracingProvider,
  parts: { contextManager: Parameters<typeof context.setGlobalContextManager>[0]; propagator: Parameters<typeof propagation.setGlobalPropagator>[0] },
): void {
  context.setGlobalContextManager(parts.contextManager);
  propagation.setGlobalPropagator(parts.propagator);
  trace.setGlobalTracerProvider(p);
  provider = p;
}

/**
 * Sends what is buffered and stops recording (at the end of a process; spans after
 * this are dropped). Waits at most `waitMs` for an exporter that does not answer.
 */
export async function stopTracing(waitMs = 5000): Promise<void> {
  const p = provider;
  if (!p) return;
  provider = null;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.shutdown().catch((err: Error) => diag.error('trace export at shutdown failed', err)),
    new Promise((resolve) => {
      timer = setTimeout(resolve, waitMs);
    }),
  ]);
  clearTimeout(timer);
}


/** OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the specification names them (default: parent-based, always on). */
function samplerFrom(sdk: typeof Sdk, env: NodeJS.ProcessEnv) {
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? 1);
  const root = new sdk.TraceIdRatioBasedSampler(Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1);
  switch (env.OTEL_TRACES_SAMPLER?.trim()) {
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'traceidratio':
      return root;
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root });
    default:
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
  }
}

function positive(value: string | undefined): number | undefined {
  const n = Number(value);
  return value && Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Runs `start` (which starts a root span) so that span takes `traceId` (32 hex
 * digits) instead of a random one: a run's trace id is its run id. Spans with a
 * parent keep the parent's trace id.
 */
export function withTraceId<T>(traceId: string, start: () => T): T {
  requestedTraceId = /^[0-9a-f]{32}$/.test(traceId) && !/^0+$/.test(traceId) ? traceId : null;
  try {
    return start();
  } finally {
    requestedTraceId = null;
  }
}

/** The W3C `traceparent` of a span, or null for a span that is not recorded anywhere (tracing off). */
export function traceparentOf(span: Span | undefined): string | null {
  const sc = span?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return null;
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A context whose (remote) parent is the span a `traceparent` names; null when it names none. */
export function contextFromTraceparent(traceparent: string | null | undefined): Context | null {
  const m = TRACEPARENT.exec(traceparent?.trim() ?? '');
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5])) return null;
  const sc = { traceId: m[2], spanId: m[3], traceFlags: Number.parseInt(m[4], 16) & TraceFlags.SAMPLED, isRemote: true };
  return isSpanContextValid(sc) ? trace.setSpanContext(ROOT_CONTEXT, sc) : null;
}

/** The context an incoming HTTP request carries (`traceparent`, `tracestate`), or null. */
export function contextFromHeaders(headers: Headers): Context | null {
  if (!provider || !headers.has('traceparent')) return null;
  const ctx = propagation.extract(ROOT_CONTEXT, headers, {
    get: (carrier, key) => carrier.get(key) ?? undefined,
    keys: (carrier) => [...carrier.keys()],
  });
  return trace.getSpanContext(ctx) ? ctx : null;
}

/** Adds the active span's `traceparent` (and `tracestate`) to outgoing HTTP headers; nothing when tracing is off. */
export function injectTraceHeaders(headers: Record<string, string>, ctx: Context = context.active()): Record<string, string> {
  if (provider) propagation.inject(ctx, headers);
  return headers;
}
