/**
 * A span per MCP (JSON-RPC) request a tool server answers (`tools/call get_diff`,
 * `initialize`, `tools/list`, …), child of the caller's span when the request carries a `traceparent` (the
 * gateway sends the step's tool-call span): a run's trace reaches into the tool
 * server. Tool code runs with this span active, so its own spans nest under it.
 * Nothing happens while tracing is off (tracing.ts).
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { MiddlewareHandler } from 'hono';
import { IDEMPOTENCY_META_KEY } from './meta-keys.ts';
import { contextFromHeaders, tracingOn } from './tracing.ts';

interface JsonRpcRequest {
  method?: unknown;
  params?: { name?: unknown; _meta?: Record<string, unknown> };
}

export function mcpSpans(server: string): MiddlewareHandler {
  return async function mcpSpans(c, next) {
    // JSON-RPC requests only: a client's GET (a server-sent event stream, which a stateless server refuses) says nothing.
    if (!tracingOn() || c.req.method !== 'POST') return next();
    const body = (await c.req.raw.clone().json().catch(() => null)) as unknown;
    const rpc: JsonRpcRequest = (Array.isArray(body) ? body[0] : body) ?? {};
    const method = typeof rpc.method === 'string' ? rpc.method : 'POST';
    const tool = method === 'tools/call' && typeof rpc.params?.name === 'string' ? rpc.params.name : null;
    const key = rpc.params?._meta?.[IDEMPOTENCY_META_KEY];
    const parent = contextFromHeaders(c.req.raw.headers) ?? ROOT_CONTEXT;
    const span = trace.getTracer('baton-tools').startSpan(
      tool ? `${method} ${tool}` : method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'mcp.method.name': method,
          'baton.tool.server': server,
          ...(tool ? { 'gen_ai.tool.name': tool, 'baton.tool': `${server}.${tool}` } : {}),
          ...(typeof key === 'string' ? { 'baton.idempotency_key': key } : {}),
        },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), next);
      span.setAttribute('http.response.status_code', c.res.status);
      if (c.res.status >= 400) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${c.res.status}` });
      else if (tool && (c.res.headers.get('content-type') ?? '').includes('application/json')) {
        // A tool's own failure is a 200 with `isError` in the result.
        const answer = (await c.res.clone().json().catch(() => null)) as { result?: { isError?: boolean } } | null;
        if (answer?.result?.isError) span.setStatus({ code: SpanStatusCode.ERROR, message: 'the tool reported an error' });
      }
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  };
}
