/**
 * The MCP gateway behind `ctx.tool('server.tool', args)`.
 *
 * 1. Scope: the function must have declared the tool; otherwise the call is refused
 *    here, before anything is sent (and audited as denied). Scopes are looked up as
 *    plain data: `constructor.x` or `__proto__.y` are undeclared tools like any other.
 * 2. A capability token is minted for this one call (tools/lib/capability.ts): audience
 *    = the server, the one tool, the digest of the exact arguments, the run's tenant,
 *    the run and seq, expiring shortly after the call must have been sent. The worker
 *    holds no tool credential; the server does. A third-party MCP server (any server
 *    reached by URL) does not check the token; it is harmless there (it names only
 *    that call), and BATON_TOOL_<NAME>_TOKEN=off withholds it from servers that have
 *    their own auth.
 * 3. The call goes out over Streamable HTTP with the step's AbortSignal and, in
 *    `_meta`, the idempotency key `run_id:seq` and the digest of the arguments.
 * 4. Every call is a `tool_calls` row, allowed or denied; a 401/403 from the tool
 *    server turns the row into a denial with the server's reason.
 * `list` discovers the declared tools of a function (MCP tools/list) with a listing
 * token, which lists and calls nothing else.
 */
import type { KeyObject } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type MintClaims, mintCapability } from '../../tools/lib/capability.ts';
import { ARGS_DIGEST_META_KEY, IDEMPOTENCY_META_KEY } from '../../tools/lib/meta-keys.ts';
import { injectTraceHeaders } from '../../tools/lib/tracing.ts';
import type { Db } from '../db/connect.ts';
import type { FunctionRegistry } from '../functions.ts';
import { BatonError } from '../errors.ts';
import { digestArgs, finishToolCall, insertToolCall } from '../store/tool-calls.ts';

export interface ToolRequest {
  runId: string;
  seq: number;
  attempt: number;
  function: string;
  /** The run's tenant: tool servers enforce their policy for it. */
  tenant: string;
  scopes: Readonly<Record<string, readonly string[]>>;
  /** `server.tool` */
  name: string;
  args: Record<string, unknown>;
  abortSignal: AbortSignal;
  /** Epoch ms when the step times out; the token expires shortly after. */
  deadline: number;
}

/** A tools/list for a step: the declared tools of one server (or of every declared server). */
export interface ToolListRequest {
  runId: string;
  seq: number;
  function: string;
  tenant: string;
  scopes: Readonly<Record<string, readonly string[]>>;
  /** One server; absent: every server the function declared. */
  server?: string;
  abortSignal: AbortSignal;
  deadline: number;
}

/** A tool as the server describes it, limited to what the function declared. */
export interface ListedTool {
  server: string;
  tool: string;
  /** `server.tool`, as `ctx.tool` takes it. */
  name: string;
  description: string | undefined;
  inputSchema: Record<string, unknown>;
  outputSchema: Record<string, unknown> | undefined;
}

export interface ToolGateway {
  call(req: ToolRequest): Promise<unknown>;
  list(req: ToolListRequest): Promise<ListedTool[]>;
}

export interface GatewayDeps {
  db: Db;
  urls: Readonly<Record<string, string>>;
  /** Servers that are sent no capability token. */
  withoutToken?: readonly string[];
  signingKey: KeyObject | null;
  /** Retries audit writes through short database blips. */
  withDb<T>(fn: () => Promise<T>): Promise<T>;
}

const TOKEN_MARGIN_S = 30;
/** A call token must reach the server within this long (it is checked on arrival); far below BATON_TOOL_MAX_TOKEN_S. */
const CALL_TOKEN_S = 60;

/** The declared tools of `server`, looked up as plain data (no prototype keys). */
export function declaredTools(scopes: Readonly<Record<string, readonly string[]>>, server: string): readonly string[] | null {
  if (!Object.hasOwn(scopes, server)) return null;
  const scope = scopes[server];
  return Array.isArray(scope) ? scope : null;
}

const own = (urls: Readonly<Record<string, string>>, server: string) => (Object.hasOwn(urls, server) ? urls[server] : undefined);

/** Seconds since the epoch; the token lives until the call must have been sent, bounded, plus a margin. */
function lifetime(deadline: number): { iat: number; exp: number } {
  const iat = Math.floor(Date.now() / 1000);
  // Never shorter than the margin: a step near its deadline is stopped by its own timeout, not by a refusal.
  return { iat, exp: Math.max(iat, Math.min(Math.ceil(deadline / 1000), iat + CALL_TOKEN_S)) + TOKEN_MARGIN_S };
}

export function splitToolName(name: string): { server: string; tool: string } | null {
  const dot = name.indexOf('.');
  if (dot <= 0 || dot === name.length - 1) return null;
  return { server: name.slice(0, dot), tool: name.slice(dot + 1) };
}

function resultValue(result: { structuredContent?: unknown; content?: unknown }): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent;
  const content = Array.isArray(result.content) ? (result.content as Array<{ type: string; text?: string }>) : [];
  const texts = content.filter((c) => c.type === 'text').map((c) => c.text ?? '');
  if (texts.length !== 1) return content;
  try {
    return JSON.parse(texts[0]);
  } catch {
    return texts[0];
  }
}

/** The reason a tool server gave for a 401/403 (its JSON-RPC error message), else the transport's message. */
function refusalReason(message: string): string {
  const json = /\{.*\}/s.exec(message)?.[0];
  try {
    const reason = (JSON.parse(json ?? '') as { error?: { message?: unknown } }).error?.message;
    if (typeof reason === 'string') return reason.slice(0, 500);
  } catch {
    // not the shape a Baton tool server answers with
  }
  return message.slice(0, 500);
}

function errorText(result: { content?: unknown }): string {
  const content = Array.isArray(result.content) ? (result.content as Array<{ type: string; text?: string }>) : [];
  return content.map((c) => c.text ?? '').join(' ').slice(0, 2000) || 'the tool reported an error';
}

/**
 * The MCP client is loaded only by a process that runs tool steps: with its schema
 * libraries it is about 30 MB of memory and 100 ms of loading, which a worker whose
 * functions make only LLM calls (or the API) never needs. A worker serving functions that
 * declare tools loads it in the background once it has started (`preloadMcpClient`), so
 * its first tool call does not wait for it; otherwise the first call loads it.
 */
let mcpSdk: Promise<{ Client: typeof Client; Transport: typeof StreamableHTTPClientTransport }> | undefined;
function loadMcpSdk() {
  mcpSdk ??= Promise.all([import('@modelcontextprotocol/sdk/client/index.js'), import('@modelcontextprotocol/sdk/client/streamableHttp.js')]).then(
    ([c, t]) => ({ Client: c.Client, Transport: t.StreamableHTTPClientTransport }),
  );
  return mcpSdk;
}

/** Starts loading the MCP client now, without waiting for it, if any of these functions declares tools (see loadMcpSdk). */
export function preloadMcpClient(functions: FunctionRegistry): void {
  if (![...functions.values()].some((agent) => Object.keys(agent.tools).length > 0)) return;
  loadMcpSdk().catch(() => {
    // Reported by the first tool call, which awaits the same import.
  });
}

export function createToolGateway(deps: GatewayDeps): ToolGateway {
  return {
    async call(req) {
      const started = Date.now();
      const parsed = splitToolName(req.name);
      const server = parsed?.server ?? req.name;
      const tool = parsed?.tool ?? '';
      const base = {
        runId: req.runId,
        seq: req.seq,
        attempt: req.attempt,
        server,
        tool,
        argsDigest: digestArgs(req.args),
      };
      const refuse = async (reason: string) => {
        await deps.withDb(() => insertToolCall(deps.db, { ...base, decision: 'denied', reason, outcome: 'denied', durationMs: 0 }));
        throw new BatonError('tool_denied', `tool call "${req.name}" denied: ${reason}`, { details: { server, tool } });
      };

      if (!parsed) await refuse('a tool is named "server.tool"');
      const scope = declaredTools(req.scopes, server);
      if (!scope?.includes(tool)) await refuse(`function "${req.function}" did not declare ${server}.${tool}`);
      const url = own(deps.urls, server);
      if (!url) await refuse(`no URL is configured for tool server "${server}" (set BATON_TOOL_${server.toUpperCase().replaceAll('-', '_')}_URL)`);
      let endpoint: URL | undefined;
      try {
        endpoint = new URL(url as string);
      } catch {
        await refuse(`the URL configured for tool server "${server}" is not a URL`);
      }
      const sendToken = !deps.withoutToken?.includes(server);
      if (sendToken && !deps.signingKey) await refuse('no signing key is configured for capability tokens (BATON_TOOL_SIGNING_KEY)');

      // The step's trace goes along (`traceparent`): the tool server's span joins it.
      const headers: Record<string, string> = injectTraceHeaders({});
      if (sendToken) {
        const token = await mintCapability(deps.signingKey as KeyObject, {
          use: 'call',
          aud: server,
          run: req.runId,
          seq: req.seq,
          fn: req.function,
          tenant: req.tenant,
          tool,
          args: base.argsDigest,
          ...lifetime(req.deadline),
        });
        headers.Authorization = `Bearer ${token}`;
      }
      const sdk = await loadMcpSdk();
      const auditId = await deps.withDb(() => insertToolCall(deps.db, { ...base, decision: 'allowed' }));
      const client = new sdk.Client({ name: 'baton-gateway', version: '1.0.0' });
      const transport = new sdk.Transport(endpoint as URL, { requestInit: { headers } });
      try {
        const timeout = Math.max(1, req.deadline - Date.now());
        await client.connect(transport, { signal: req.abortSignal, timeout });
        const result = (await client.callTool(
          { name: tool, arguments: req.args, _meta: { [IDEMPOTENCY_META_KEY]: `${req.runId}:${req.seq}`, [ARGS_DIGEST_META_KEY]: base.argsDigest } },
          undefined,
          { signal: req.abortSignal, timeout },
        )) as { structuredContent?: unknown; content?: unknown; isError?: boolean };
        if (result.isError) {
          const message = errorText(result);
          await deps.withDb(() => finishToolCall(deps.db, auditId, { outcome: 'error', error: message, durationMs: Date.now() - started }));
          // The same key with other arguments: retrying cannot help, and the first result is not this call's.
          if (message.startsWith('idempotency_conflict:')) throw new BatonError('idempotency_conflict', `${req.name}: ${message}`, { details: { server, tool } });
          throw new BatonError('tool_error', `${req.name}: ${message}`, { details: { server, tool } });
        }
        await deps.withDb(() => finishToolCall(deps.db, auditId, { outcome: 'ok', durationMs: Date.now() - started }));
        return resultValue(result);
      } catch (err) {
        if (err instanceof BatonError) throw err;
        const code = (err as { code?: unknown }).code;
        const message = (err as Error).message ?? String(err);
        const denied = code === 401 || code === 403;
        await deps
          .withDb(() =>
            finishToolCall(deps.db, auditId, {
              outcome: denied ? 'denied' : 'error',
              error: message.slice(0, 2000),
              durationMs: Date.now() - started,
              ...(denied ? { decision: 'denied' as const, reason: `the tool server answered ${String(code)}: ${refusalReason(message)}` } : {}),
            }),
          )
          .catch(() => {});
        if (req.abortSignal.aborted) throw req.abortSignal.reason ?? err;
        throw callFailure(req.name, code, message, err);
      } finally {
        // A stateful server (one that gave a session id) is told the session is over.
        if (transport.sessionId) {
          await Promise.race([transport.terminateSession().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
        }
        await client.close().catch(() => {});
      }
    },

    async list(req) {
      const servers = req.server !== undefined ? [req.server] : Object.keys(req.scopes).sort();
      const out: ListedTool[] = [];
      for (const server of servers) {
        const scope = declaredTools(req.scopes, server);
        if (!scope?.length) throw new BatonError('tool_denied', `function "${req.function}" declared no tool of "${server}"`, { details: { server } });
        const url = own(deps.urls, server);
        if (!url) throw new BatonError('tool_denied', `no URL is configured for tool server "${server}"`, { details: { server } });
        const sendToken = !deps.withoutToken?.includes(server);
        if (sendToken && !deps.signingKey) throw new BatonError('tool_denied', 'no signing key is configured for capability tokens (BATON_TOOL_SIGNING_KEY)');
        // The listing step's trace goes along too (`traceparent`).
        const headers: Record<string, string> = injectTraceHeaders({});
        if (sendToken) {
          const claims: MintClaims = { use: 'list', aud: server, run: req.runId, seq: req.seq, fn: req.function, tenant: req.tenant, tools: [...scope], ...lifetime(req.deadline) };
          headers.Authorization = `Bearer ${await mintCapability(deps.signingKey as KeyObject, claims)}`;
        }
        const sdk = await loadMcpSdk();
        const client = new sdk.Client({ name: 'baton-gateway', version: '1.0.0' });
        let transport: StreamableHTTPClientTransport;
        try {
          transport = new sdk.Transport(new URL(url), { requestInit: { headers } });
        } catch {
          throw new BatonError('tool_denied', `the URL configured for tool server "${server}" is not a URL`, { details: { server } });
        }
        try {
          const timeout = Math.max(1, req.deadline - Date.now());
          await client.connect(transport, { signal: req.abortSignal, timeout });
          let cursor: string | undefined;
          // Bounded: a server that pages forever is not listing tools.
          for (let page = 0; page < 20; page++) {
            const listed = await client.listTools(cursor ? { cursor } : undefined, { signal: req.abortSignal, timeout });
            for (const t of listed.tools) {
              if (!scope.includes(t.name)) continue;
              out.push({
                server,
                tool: t.name,
                name: `${server}.${t.name}`,
                description: t.description,
                inputSchema: t.inputSchema as Record<string, unknown>,
                outputSchema: t.outputSchema as Record<string, unknown> | undefined,
              });
            }
            cursor = listed.nextCursor;
            if (!cursor) break;
          }
        } catch (err) {
          if (req.abortSignal.aborted) throw req.abortSignal.reason ?? err;
          const code = (err as { code?: unknown }).code;
          const message = (err as Error).message ?? String(err);
          if (code === 401 || code === 403) throw new BatonError('tool_denied', `${server}: the tool server refused the listing: ${refusalReason(message)}`, { cause: err });
          throw new BatonError('tool_unavailable', `${server}: ${message}`, { cause: err });
        } finally {
          if (transport.sessionId) {
            await Promise.race([transport.terminateSession().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
          }
          await client.close().catch(() => {});
        }
      }
      return out;
    },
  };
}

/**
 * A failed call as the engine sees it: a refusal is final, except our own token running out in
 * transit (an overloaded server, a slow network), which the next attempt fixes with a fresh token.
 */
export function callFailure(name: string, status: unknown, message: string, cause?: unknown): BatonError {
  const refused = (status === 401 || status === 403) && !/token expired/.test(message);
  if (refused) return new BatonError('tool_denied', `${name}: the tool server refused the call: ${message}`, { cause });
  return new BatonError('tool_unavailable', `${name}: ${message}`, { cause });
}
