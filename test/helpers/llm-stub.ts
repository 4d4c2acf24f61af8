/**
 * An OpenAI-compatible stub (POST /v1/chat/completions, JSON and SSE streaming) for
 * tests: the real @ai-sdk/openai provider talks to it over real HTTP. Each call's
 * answer comes from `reply` (default: echo the last user message's first line);
 * `delayMs` makes it slow, `failFirst` makes the first N calls answer 500, and `fail`
 * answers any call with the HTTP error it returns (429 with Retry-After, 401, …).
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';

export interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content: unknown }>;
  stream?: boolean;
  tools?: unknown[];
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
  close(): Promise<void>;
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
  let inflight = 0;
  const app = new Hono();
  const delay = (n: number, req: ChatRequest, signal: AbortSignal) => {
    const d = opts.delayMs;
    const ms = d === undefined ? 0 : typeof d === 'number' ? d : typeof d === 'function' ? d(n, req) : d[0] + Math.random() * (d[1] - d[0]);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  };
  app.post('/v1/chat/completions', async (c) => {
    const req = (await c.req.json()) as ChatRequest;
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
    if (opts.failFirst && n <= opts.failFirst) return c.json({ error: { message: 'stub failure', type: 'server_error' } }, 500);
    const failure = opts.fail?.(n, req);
    if (failure) {
      const body = { error: { message: failure.message ?? `stub answered ${failure.status}`, type: 'stub_error' } };
      return c.json(body, failure.status as 400, failure.headers ?? {});
    }
    const reply = opts.reply?.(req, n) ?? `stub answer: ${lastUserText(req).split('\n')[0].slice(0, 80)}`;
    const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
    const id = `chatcmpl-${n}`;
    const created = Math.floor(Date.now() / 1000);
    const toolCalls =
      typeof reply === 'string'
        ? undefined
        : reply.toolCalls.map((t, i) => ({ id: `call_${i}`, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.arguments) } }));
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
