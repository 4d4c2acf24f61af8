/**
 * A tool server: an MCP server over Streamable HTTP (stateless: a fresh McpServer and
 * transport per request; only POST is served, GET and DELETE answer 405), behind
 * checks made before any tool code runs:
 *   1. Host guard (DNS rebinding): only the configured host names are served.
 *   2. Capability token: signature, lifetime, expiry and audience (401/403 otherwise).
 *   3. The call: a `tools/call` is the token's one tool, with arguments whose digest is
 *      the token's (`token_args_mismatch` otherwise), under the token's own
 *      idempotency key; a listing token calls nothing. Only those tools are listed.
 *   4. Tenant policy (BATON_TOOL_POLICY): what the call touches is the token's
 *      tenant's to touch (`policy_denied` otherwise).
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
import { type CapabilityClaims, DEFAULT_MAX_TOKEN_S, loadPublicKeys, verifyCapability } from './capability.ts';
import { digestArgs } from './digest.ts';
import { type ToolPolicy, type Touches, loadPolicy, policyProblem } from './policy.ts';
import { mcpSpans } from './mcp-span.ts';
import { ARGS_DIGEST_META_KEY, IDEMPOTENCY_META_KEY } from './meta-keys.ts';

export { ARGS_DIGEST_META_KEY, IDEMPOTENCY_META_KEY } from './meta-keys.ts';

/** Tool arguments are small; a bigger body is refused before it is parsed. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** What a tool handler knows about its caller. */
export interface ToolCaller {
  claims: CapabilityClaims | null;
  /** `run_id:seq` from the token: the key to dedupe side effects on. */
  idempotencyKey: string | null;
  /** The digest of the arguments the token was minted for (equal to the received ones). */
  argsDigest: string | null;
  tenant: string | null;
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
  /** Longest token lifetime accepted (BATON_TOOL_MAX_TOKEN_S). */
  maxTokenS?: number;
  /** The tenant policy; null or absent: every tenant may touch anything. */
  policy?: ToolPolicy | null;
  /** What a call of `tool` with `args` touches, for the policy; null: nothing a tenant owns. */
  touches?: (tool: string, args: Record<string, unknown>) => Touches | null;
  /** Told of every refused request (a token used off the gateway is audited nowhere else). */
  onRefusal?: (refusal: Refusal) => void;
}

export interface Refusal {
  server: string;
  status: number;
  reason: string;
  /** From a verified token, when there was one. */
  tenant?: string;
  run?: string;
  seq?: number;
  fn?: string;
  tool?: string;
}

/** The refusal log of a tool server process: one JSON line per refused request, on stderr. */
export function logRefusal(refusal: Refusal): void {
  process.stderr.write(`${JSON.stringify({ ...refusal, refused: true, at: new Date().toISOString() })}\n`);
}

function deny(status: 400 | 401 | 403 | 405 | 413, message: string, extraHeaders: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...extraHeaders };
  if (status === 401) headers['www-authenticate'] = 'Bearer error="invalid_token"';
  // A refusal that has a stable code says it first (`token_args_mismatch: ...`) and in `data`.
  const code = /^([a-z]+(?:_[a-z]+)+):/.exec(message)?.[1];
  const error = { code: -32001, message, ...(code ? { data: { code } } : {}) };
  return new Response(JSON.stringify({ jsonrpc: '2.0', id: null, error }), { status, headers });
}

interface JsonRpcCall {
  method?: string;
  params?: { name?: unknown; arguments?: unknown; _meta?: Record<string, unknown> };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks every tools/call in a (possibly batched) JSON-RPC body against the token and the policy. */
function checkCalls(body: unknown, claims: CapabilityClaims, opts: ToolServerOptions): string | null {
  const calls = ((Array.isArray(body) ? body : [body]) as JsonRpcCall[]).filter((c) => c?.method === 'tools/call');
  if (calls.length === 0) return null;
  if (claims.use === 'list') return 'a listing token cannot call tools';
  if (calls.length > 1) return 'a token is good for one call; this request makes several';
  const call = calls[0];
  const name = call.params?.name;
  if (typeof name !== 'string' || name !== claims.tool) return `tool "${String(name)}" is not in this token's scope`;
  const meta = isRecord(call.params?._meta) ? call.params._meta : {};
  const given = meta[IDEMPOTENCY_META_KEY];
  if (given !== undefined && given !== claims.sub) return 'the idempotency key does not belong to this token';
  const args = call.params?.arguments ?? {};
  const digest = digestArgs(args);
  if (digest !== claims.args) return `token_args_mismatch: the arguments (${digest}) are not the ones this token was minted for (${claims.args})`;
  const declared = meta[ARGS_DIGEST_META_KEY];
  if (declared !== undefined && declared !== claims.args) return `token_args_mismatch: the call's declared argument digest is not the token's`;
  if (opts.policy && opts.touches && isRecord(args)) {
    const touches = opts.touches(name, args);
    if (touches) return policyProblem(opts.policy, claims.tenant, touches);
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
    let claims: CapabilityClaims | null = null;
    const refuse = (status: 400 | 401 | 403 | 405, reason: string, headers: Record<string, string> = {}) => {
      opts.onRefusal?.({
        server: opts.name,
        status,
        reason,
        ...(claims ? { tenant: claims.tenant, run: claims.run, seq: claims.seq, fn: claims.fn, ...(claims.use === 'call' ? { tool: claims.tool } : {}) } : {}),
      });
      return deny(status, reason, headers);
    };
    const host = (c.req.header('host') ?? '').toLowerCase().replace(/:\d+$/, '');
    if (!allowed.has(host)) return refuse(403, `host "${host}" is not allowed`);
    // Stateless: no session to resume (GET) or end (DELETE), so no stream that could outlive a token.
    if (c.req.method !== 'POST') return refuse(405, `${c.req.method} is not served: this endpoint is stateless, POST only`, { allow: 'POST' });

    if (opts.publicKey) {
      const auth = c.req.header('authorization') ?? '';
      const token = /^Bearer (\S+)$/i.exec(auth)?.[1];
      if (!token) return refuse(401, 'a capability token is required');
      const verdict = await verifyCapability(opts.publicKey, token, opts.name, { maxLifetimeS: opts.maxTokenS ?? DEFAULT_MAX_TOKEN_S });
      if (!verdict.ok) return refuse(verdict.status, verdict.reason);
      claims = verdict.claims;
      let body: unknown;
      try {
        body = await c.req.raw.clone().json();
      } catch {
        return refuse(400, 'the body is not JSON');
      }
      const problem = checkCalls(body, claims, opts);
      if (problem) return refuse(403, problem);
    }

    const server = new McpServer({ name: opts.name, version: opts.version ?? '1.0.0' }, { capabilities: { logging: {} } });
    const scope = claims ? (claims.use === 'call' ? [claims.tool] : claims.tools) : null;
    opts.register(server, scope ? new Set(scope) : null);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    const caller: ToolCaller = {
      claims,
      idempotencyKey: claims ? claims.sub : null,
      argsDigest: claims?.use === 'call' ? claims.args : null,
      tenant: claims?.tenant ?? null,
    };
    return transport.handleRequest(c.req.raw, {
      authInfo: { token: '', clientId: claims?.fn ?? 'anonymous', scopes: scope ?? [], extra: { caller } },
    });
  });
  return app;
}

/** Reads the caller from a tool handler's `extra` argument. */
export function callerOf(extra: { authInfo?: { extra?: Record<string, unknown> } }): ToolCaller {
  return (extra.authInfo?.extra?.caller as ToolCaller | undefined) ?? { claims: null, idempotencyKey: null, argsDigest: null, tenant: null };
}

/** Common environment of every tool server process. */
export function toolServerEnv(env: NodeJS.ProcessEnv = process.env) {
  const key = env.BATON_TOOL_PUBLIC_KEY;
  if (!key && env.BATON_TOOL_AUTH !== 'off') {
    throw new Error('BATON_TOOL_PUBLIC_KEY is required (or BATON_TOOL_AUTH=off for a local experiment)');
  }
  const maxTokenS = Number(env.BATON_TOOL_MAX_TOKEN_S ?? DEFAULT_MAX_TOKEN_S);
  if (!Number.isInteger(maxTokenS) || maxTokenS < 1) throw new Error('BATON_TOOL_MAX_TOKEN_S must be a whole number of seconds');
  return {
    port: Number(env.PORT ?? 0),
    host: env.HOST ?? '127.0.0.1',
    publicKey: key ? loadPublicKeys(key) : null,
    allowedHosts: (env.BATON_TOOL_ALLOWED_HOSTS ?? 'localhost,127.0.0.1,[::1]').split(',').map((h) => h.trim()),
    maxTokenS,
    policy: loadPolicy(env.BATON_TOOL_POLICY),
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
