/**
 * A tool server: an MCP server over Streamable HTTP (stateless: a fresh McpServer and
 * transport per request), behind three checks made before any tool code runs:
 *   1. Host guard (DNS rebinding): only the configured host names are served.
 *   2. Capability token: signature, expiry and audience (401/403 otherwise).
 *   3. Scope: a `tools/call` names a tool in the token, and its idempotency key, when
 *      given, is the token's own run:seq (403 otherwise). Only scoped tools are listed.
 * Tool servers hold their own credentials and import nothing from the runtime.
 */
import type { KeyObject } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { type CapabilityClaims, loadPublicKeys, verifyCapability } from './capability.ts';
import { mcpSpans } from './mcp-span.ts';

export const IDEMPOTENCY_META_KEY = 'baton/idempotency-key';

/** Tool arguments are small; a bigger body is refused before it is parsed. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** What a tool handler knows about its caller. */
export interface ToolCaller {
  claims: CapabilityClaims | null;
  /** `run_id:seq` from the token: the key to dedupe side effects on. */
  idempotencyKey: string | null;
}

export interface ToolServerOptions {
  name: string;
  version?: string;
  /** Verifies capability tokens (several during a key rotation). null disables auth (local experiments only). */
  publicKey: KeyObject | readonly KeyObject[] | null;
  /** Host names accepted in the Host header. */
  allowedHosts: string[];
  /** Registers the server's tools; `only` limits registration to the token's scope. */
  register(server: McpServer, only: ReadonlySet<string> | null): void;
  /** Readiness (`GET /readyz`): null when the server can serve, otherwise why not (503). */
  ready?: () => Promise<string | null>;
}

function deny(status: 400 | 401 | 403 | 413, message: string): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token"';
  return new Response(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message } }), { status, headers });
}

interface JsonRpcCall {
  method?: string;
  params?: { name?: string; _meta?: Record<string, unknown> };
}

/** Checks every tools/call in a (possibly batched) JSON-RPC body against the token. */
function checkScope(body: unknown, claims: CapabilityClaims): string | null {
  const calls = (Array.isArray(body) ? body : [body]) as JsonRpcCall[];
  const key = `${claims.run}:${claims.seq}`;
  for (const call of calls) {
    if (call?.method !== 'tools/call') continue;
    const name = call.params?.name;
    if (typeof name !== 'string' || !claims.tools.includes(name)) return `tool "${String(name)}" is not in this token's scope`;
    const given = call.params?._meta?.[IDEMPOTENCY_META_KEY];
    if (given !== undefined && given !== key) return 'the idempotency key does not belong to this token';
  }
  return null;
}

export function createToolServerApp(opts: ToolServerOptions): Hono {
  const app = new Hono();
  const allowed = new Set(opts.allowedHosts.map((h) => h.toLowerCase()));

  app.get('/healthz', (c) => c.json({ ok: true, server: opts.name }));
  app.get('/readyz', async (c) => {
    const reason = opts.ready ? await opts.ready() : null;
    return reason ? c.json({ ok: false, server: opts.name, reason }, 503) : c.json({ ok: true, server: opts.name });
  });

  // First, so a refused request shows in the caller's trace too.
  app.use('/mcp', mcpSpans(opts.name));
  app.use('/mcp', bodyLimit({ maxSize: MAX_REQUEST_BYTES, onError: () => deny(413, `the request is over ${MAX_REQUEST_BYTES} bytes`) }));
  app.all('/mcp', async (c) => {
    const host = (c.req.header('host') ?? '').toLowerCase().replace(/:\d+$/, '');
    if (!allowed.has(host)) return deny(403, `host "${host}" is not allowed`);

    let claims: CapabilityClaims | null = null;
    if (opts.publicKey) {
      const auth = c.req.header('authorization') ?? '';
      const token = /^Bearer (\S+)$/i.exec(auth)?.[1];
      if (!token) return deny(401, 'a capability token is required');
      const verdict = verifyCapability(opts.publicKey, token, opts.name);
      if (!verdict.ok) return deny(verdict.status, verdict.reason);
      claims = verdict.claims;
      if (c.req.method === 'POST') {
        let body: unknown;
        try {
          body = await c.req.raw.clone().json();
        } catch {
          return deny(400, 'the body is not JSON');
        }
        const problem = checkScope(body, claims);
        if (problem) return deny(403, problem);
      }
    }

    const server = new McpServer({ name: opts.name, version: opts.version ?? '1.0.0' }, { capabilities: { logging: {} } });
    opts.register(server, claims ? new Set(claims.tools) : null);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    const caller: ToolCaller = { claims, idempotencyKey: claims ? `${claims.run}:${claims.seq}` : null };
    return transport.handleRequest(c.req.raw, {
      authInfo: { token: '', clientId: claims?.fn ?? 'anonymous', scopes: claims?.tools ?? [], extra: { caller } },
    });
  });
  return app;
}

/** Reads the caller from a tool handler's `extra` argument. */
export function callerOf(extra: { authInfo?: { extra?: Record<string, unknown> } }): ToolCaller {
  return (extra.authInfo?.extra?.caller as ToolCaller | undefined) ?? { claims: null, idempotencyKey: null };
}

/** Common environment of every tool server process. */
export function toolServerEnv(env: NodeJS.ProcessEnv = process.env) {
  const key = env.BATON_TOOL_PUBLIC_KEY;
  if (!key && env.BATON_TOOL_AUTH !== 'off') {
    throw new Error('BATON_TOOL_PUBLIC_KEY is required (or BATON_TOOL_AUTH=off for a local experiment)');
  }
  return {
    port: Number(env.PORT ?? 0),
    host: env.HOST ?? '127.0.0.1',
    publicKey: key ? loadPublicKeys(key) : null,
    allowedHosts: (env.BATON_TOOL_ALLOWED_HOSTS ?? 'localhost,127.0.0.1,[::1]').split(',').map((h) => h.trim()),
  };
}

/** Serves an app and resolves with its URL once listening. */
export function listen(app: Hono, port: number, host: string): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }, (info) => {
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${info.port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

/** True when the module at `url` is the process's entry point (`node tools/x/server.ts`). */
export function isMain(url: string): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(url));
  } catch {
    return false;
  }
}
