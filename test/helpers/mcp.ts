/**
 * Talking MCP to a tool server the way an attacker would: raw JSON-RPC over HTTP with
 * whatever token and headers the test chooses, and the answer's status kept.
 */
import { IDEMPOTENCY_META_KEY } from '../../tools/lib/server.ts';

export interface RpcAnswer {
  status: number;
  /** The JSON-RPC response (or error body); null when the body is not JSON. */
  body: {
    result?: { isError?: boolean; content?: Array<{ type: string; text?: string }>; structuredContent?: Record<string, unknown>; tools?: Array<{ name: string }> };
    error?: { code: number; message: string };
  } | null;
  headers: Headers;
}

type Fetcher = (url: string, init: RequestInit) => Response | Promise<Response>;

let nextId = 1;

export function toolsCall(name: string, args: Record<string, unknown>, idempotencyKey?: string) {
  return {
    jsonrpc: '2.0',
    id: nextId++,
    method: 'tools/call',
    params: { name, arguments: args, ...(idempotencyKey ? { _meta: { [IDEMPOTENCY_META_KEY]: idempotencyKey } } : {}) },
  };
}

export function toolsList() {
  return { jsonrpc: '2.0', id: nextId++, method: 'tools/list', params: {} };
}

/**
 * POSTs one JSON-RPC body to `url` (an absolute URL, or a path for `app.request`).
 * `fetcher` defaults to the global fetch (a real HTTP request).
 */
export async function rpc(
  url: string,
  body: unknown,
  opts: { token?: string; headers?: Record<string, string>; fetcher?: Fetcher } = {},
): Promise<RpcAnswer> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-11-25',
    ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
    ...opts.headers,
  };
  const res = await (opts.fetcher ?? fetch)(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: RpcAnswer['body'];
  try {
    json = JSON.parse(text) as RpcAnswer['body'];
  } catch {
    json = null;
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** The text of a tool result (or of a JSON-RPC error). */
export function answerText(a: RpcAnswer): string {
  return a.body?.result?.content?.map((c) => c.text ?? '').join(' ') ?? a.body?.error?.message ?? '';
}
