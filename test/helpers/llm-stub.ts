/**
 * An OpenAI-compatible stub (POST /v1/chat/completions, JSON and SSE streaming, and
 * POST /v1/responses, JSON) for tests: the real @ai-sdk/openai provider talks to it
 * over real HTTP. Each call's answer comes from `reply` (default: echo the last user
 * message's first line): text, or tool calls (several in one answer); `delayMs` makes it
 * slow, `failFirst` makes the first N calls answer 500, and `fail` answers any call with
 * the HTTP error it returns (429 with Retry-After, 401, …).
 *
 * A conversation must carry the results of the tool calls it asked for: a request whose
 * history holds a tool call this stub issued without its result (or a call it never
 * issued) is answered 400 and noted in `problems`. `toolResults(call)` gives the results
 * a request carried, by tool call id, for both APIs.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';

export interface ChatRequest {
  /** Which API the request came through. */
  api: 'chat' | 'responses';
  model: string;
  /** Chat Completions' messages; for /responses, its `input` items mapped to the same shape. */
  messages: Array<{ role: string; content: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string }>;
  stream?: boolean;
  tools?: unknown[];
  /** The raw /responses `input`, for tests of that API. */
  input?: unknown[];
}

export type StubReply = string | { toolCalls: Array<{ name: string; arguments: Record<string, unknown> }> };

/** An error answer: the status, its headers (e.g. `retry-after`) and the message in the body. */
export interface StubFailure {
  status: number;
  headers?: Record<string, string>;
  message?: string;
}

export interface LlmStubOptions {
  reply?: (req: ChatRequest, call: number) => StubReply;
  /** Fixed delay, or [min, max] uniformly, or per call (1-based), before answering (ms). */
  delayMs?: number | [number, number] | ((call: number, req: ChatRequest) => number);
  /** Awaited after the delay, before answering: lets a test hold a call until it says so. */
  gate?: (call: number, req: ChatRequest) => Promise<void> | void;
  failFirst?: number;
  /** Per call (1-based): answer with this error instead, or undefined to answer normally. */
  fail?: (call: number, req: ChatRequest) => StubFailure | undefined;
  /** Pause between streamed chunks (ms), so a client sees the tokens arrive over time. */
  chunkDelayMs?: number;
}

export interface LlmStub {
  url: string;
  /** Requests seen, in order. */
  calls: ChatRequest[];
  /** Calls whose client went away before the answer (aborted), by call number, with when (epoch ms). */
  aborted: Map<number, number>;
  /** Calls received and not yet answered or aborted. */
  readonly inflight: number;
  /** Requests refused because their history lacked a tool result (or held a call never issued). */
  problems: string[];
  /** Tool call id → the result text a request carried. */
  toolResults(req: ChatRequest): Map<string, string>;
  close(): Promise<void>;
}

/** /responses `input` items → chat-shaped messages, so tests read both APIs alike. */
function fromResponsesInput(input: unknown[]): ChatRequest['messages'] {
  const out: ChatRequest['messages'] = [];
  for (const raw of input) {
    const item = raw as { type?: string; role?: string; content?: unknown; call_id?: string; name?: string; arguments?: string; output?: unknown };
    if (item.type === 'function_call') {
      const last = out.at(-1);
      const call = { id: item.call_id ?? '', function: { name: item.name ?? '', arguments: item.arguments ?? '' } };
      if (last?.role === 'assistant') (last.tool_calls ??= []).push(call);
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (item.type === 'function_call_output') {
      out.push({ role: 'tool', tool_call_id: item.call_id, content: typeof item.output === 'string' ? item.output : JSON.stringify(item.output) });
    } else if (item.role) {
      const content = Array.isArray(item.content) ? item.content.map((p) => ({ text: (p as { text?: string }).text ?? '' })) : item.content;
      out.push({ role: item.role === 'developer' ? 'system' : item.role, content });
    }
  }
  return out;
}

function resultsOf(req: ChatRequest): Map<string, string> {
  const results = new Map<string, string>();
  for (const m of req.messages) {
    if (m.role === 'tool' && m.tool_call_id) results.set(m.tool_call_id, typeof m.content === 'string' ? m.content : JSON.stringify(m.content));
  }
  return results;
}

function lastUserText(req: ChatRequest): string {
  const user = [...req.messages].reverse().find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p as { text?: string }).text ?? '').join('');
  return '';
}

export async function startLlmStub(opts: LlmStubOptions = {}): Promise<LlmStub> {
  const calls: ChatRequest[] = [];
  const aborted = new Map<number, number>();
  const issued = new Set<string>();
  const problems: string[] = [];
  let inflight = 0;
  const app = new Hono();
  /** Every tool call in the history was issued here and has its result: else why not. */
  const checkHistory = (req: ChatRequest): string | null => {
    const results = resultsOf(req);
    for (const m of req.messages) {
      for (const call of m.tool_calls ?? []) {
        if (!issued.has(call.id)) return `tool call ${call.id} in the history was never issued by this stub`;
        if (!results.has(call.id)) return `tool call ${call.id} (${call.function.name}) has no tool result in the history`;
      }
    }
    return null;
  };
  /** Waits, fails or answers: the shared part of both APIs. */
  const prepare = async (c: Context, req: ChatRequest): Promise<{ n: number; reply: StubReply } | Response> => {
    calls.push(req);
    const n = calls.length;
    const signal = c.req.raw.signal;
    inflight++;
    signal.addEventListener('abort', () => aborted.set(n, Date.now()), { once: true });
    try {
      await delay(n, req, signal);
      await opts.gate?.(n, req);
    } finally {
      inflight--;
    }
    if (signal.aborted) return c.body(null, 499 as never);
    const problem = checkHistory(req);
    if (problem) {
      problems.push(`call ${n}: ${problem}`);
      return c.json({ error: { message: problem, type: 'invalid_request_error' } }, 400);
    }
    if (opts.failFirst && n <= opts.failFirst) return c.json({ error: { message: 'stub failure', type: 'server_error' } }, 500);
    const failure = opts.fail?.(n, req);
    if (failure) {
      const body = { error: { message: failure.message ?? `stub answered ${failure.status}`, type: 'stub_error' } };
      return c.json(body, failure.status as 400, failure.headers ?? {});
    }
    return { n, reply: opts.reply?.(req, n) ?? `stub answer: ${lastUserText(req).split('\n')[0].slice(0, 80)}` };
  };
  const toolCallsOf = (n: number, reply: StubReply) =>
    typeof reply === 'string'
      ? undefined
      : reply.toolCalls.map((t, i) => {
          const id = `call_${n}_${i}`;
          issued.add(id);
          return { id, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.arguments) } };
        });
  const delay = (n: number, req: ChatRequest, signal: AbortSignal) => {
    const d = opts.delayMs;
    const ms = d === undefined ? 0 : typeof d === 'number' ? d : typeof d === 'function' ? d(n, req) : d[0] + Math.random() * (d[1] - d[0]);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  };
  app.post('/v1/responses', async (c) => {
    const body = (await c.req.json()) as { model: string; input?: unknown[]; tools?: unknown[]; instructions?: string };
    const input = body.input ?? [];
    const req: ChatRequest = { api: 'responses', model: body.model, messages: fromResponsesInput(input), tools: body.tools, input };
    const prepared = await prepare(c, req);
    if (prepared instanceof Response) return prepared;
    const { n, reply } = prepared;
    const output =
      typeof reply === 'string'
        ? [{ type: 'message', role: 'assistant', id: `msg_${n}`, status: 'completed', content: [{ type: 'output_text', text: reply, annotations: [] }] }]
        : (toolCallsOf(n, reply) ?? []).map((t) => ({ type: 'function_call', id: `fc_${t.id}`, call_id: t.id, name: t.function.name, arguments: t.function.arguments, status: 'completed' }));
    return c.json({
      id: `resp_${n}`,
      object: 'response',
      created_at: Math.floor(Date.now() / 1000),
      model: body.model,
      status: 'completed',
      output,
      usage: { input_tokens: 11, output_tokens: 7, total_tokens: 18, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } },
    });
  });
  app.post('/v1/chat/completions', async (c) => {
    const req = { ...((await c.req.json()) as Omit<ChatRequest, 'api'>), api: 'chat' as const };
    const prepared = await prepare(c, req);
    if (prepared instanceof Response) return prepared;
    const { n, reply } = prepared;
    const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
    const id = `chatcmpl-${n}`;
    const created = Math.floor(Date.now() / 1000);
    const toolCalls = toolCallsOf(n, reply);
    const text = typeof reply === 'string' ? reply : null;
    const finish = toolCalls ? 'tool_calls' : 'stop';
    if (!req.stream) {
      return c.json({
        id,
        object: 'chat.completion',
        created,
        model: req.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, tool_calls: toolCalls }, finish_reason: finish }],
        usage,
      });
    }
    return streamSSE(c, async (s) => {
      const chunk = (delta: unknown, finishReason: string | null, extra: Record<string, unknown> = {}) =>
        s.writeSSE({
          data: JSON.stringify({ id, object: 'chat.completion.chunk', created, model: req.model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra }),
        });
      await chunk({ role: 'assistant', content: '' }, null);
      for (const piece of text?.match(/\S+\s*/g) ?? []) {
        if (opts.chunkDelayMs) await s.sleep(opts.chunkDelayMs);
        await chunk({ content: piece }, null);
      }
      if (toolCalls) await chunk({ tool_calls: toolCalls.map((t, index) => ({ index, ...t })) }, null);
      await chunk({}, finish);
      await s.writeSSE({ data: JSON.stringify({ id, object: 'chat.completion.chunk', created, model: req.model, choices: [], usage }) });
      await s.writeSSE({ data: '[DONE]' });
    });
  });
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}/v1`,
        calls,
        aborted,
        problems,
        toolResults: resultsOf,
        get inflight() {
          return inflight;
        },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as Server).closeAllConnections?.();
          }),
      });
    });
  });
}
