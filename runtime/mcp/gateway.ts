/**
 * The MCP gateway behind `ctx.tool('server.tool', args)`.
 *
 * 1. Scope: the function must have declared the tool; otherwise the call is refused
 *    here, before anything is sent (and audited as denied).
 * 2. A capability token is minted for this step: audience = the server, the
 *    function's declared tools of that server, the run and seq, expiry = the step's
 *    deadline plus a margin. The worker holds no tool credential; the server does.
 *    A third-party MCP server (any server reached by URL) does not check the token;
 *    it is harmless there (it names only that server and expires with the step), and
 *    BATON_TOOL_<NAME>_TOKEN=off withholds it from servers that have their own auth.
 * 3. The call goes out over Streamable HTTP with the step's AbortSignal and the
 *    idempotency key `run_id:seq` in `_meta`.
 * 4. Every call is a `tool_calls` row, allowed or denied; a 401/403 from the tool
 *    server turns the row into a denial with the server's reason.
 */
import type { KeyObject } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mintCapability } from '../../tools/lib/capability.ts';
import { IDEMPOTENCY_META_KEY } from '../../tools/lib/server.ts';
import type { Db } from '../db/connect.ts';
import { BatonError } from '../errors.ts';
import { digestArgs, finishToolCall, insertToolCall } from '../store/tool-calls.ts';
import { type ListRequest, type ToolDefinition, listTools } from './list-tools.ts';

export interface ToolRequest {
  runId: string;
  seq: number;
  attempt: number;
  function: string;
  scopes: Readonly<Record<string, readonly string[]>>;
  /** `server.tool` */
  name: string;
  args: Record<string, unknown>;
  abortSignal: AbortSignal;
  /** Epoch ms when the step times out; the token expires shortly after. */
  deadline: number;
}

export interface ToolGateway {
  call(req: ToolRequest): Promise<unknown>;
  /** The declared tools' definitions (`tools/list`, cached per process: mcp/list-tools.ts). */
  list(req: ListRequest): Promise<ToolDefinition[]>;
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

export function createToolGateway(deps: GatewayDeps): ToolGateway {
  return {
    list: (req) => listTools(deps, req),
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
      const scope = req.scopes[server];
      if (!scope?.includes(tool)) await refuse(`function "${req.function}" did not declare ${server}.${tool}`);
      const url = deps.urls[server];
      if (!url) await refuse(`no URL is configured for tool server "${server}" (set BATON_TOOL_${server.toUpperCase().replaceAll('-', '_')}_URL)`);
      let endpoint: URL | undefined;
      try {
        endpoint = new URL(url as string);
      } catch {
        await refuse(`the URL configured for tool server "${server}" is not a URL`);
      }
      const sendToken = !deps.withoutToken?.includes(server);
      if (sendToken && !deps.signingKey) await refuse('no signing key is configured for capability tokens (BATON_TOOL_SIGNING_KEY)');

      const headers: Record<string, string> = {};
      if (sendToken) {
        const token = mintCapability(deps.signingKey as KeyObject, {
          aud: server,
          run: req.runId,
          seq: req.seq,
          fn: req.function,
          tools: [...(scope ?? [])],
          exp: Math.ceil(req.deadline / 1000) + TOKEN_MARGIN_S,
        });
        headers.Authorization = `Bearer ${token}`;
      }
      const auditId = await deps.withDb(() => insertToolCall(deps.db, { ...base, decision: 'allowed' }));
      const client = new Client({ name: 'baton-gateway', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(endpoint as URL, { requestInit: { headers } });
      try {
        const timeout = Math.max(1, req.deadline - Date.now());
        await client.connect(transport, { signal: req.abortSignal, timeout });
        const result = (await client.callTool(
          { name: tool, arguments: req.args, _meta: { [IDEMPOTENCY_META_KEY]: `${req.runId}:${req.seq}` } },
          undefined,
          { signal: req.abortSignal, timeout },
        )) as { structuredContent?: unknown; content?: unknown; isError?: boolean };
        if (result.isError) {
          const message = errorText(result);
          await deps.withDb(() => finishToolCall(deps.db, auditId, { outcome: 'error', error: message, durationMs: Date.now() - started }));
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
        if (denied) throw new BatonError('tool_denied', `${req.name}: the tool server refused the call: ${message}`, { cause: err });
        throw new BatonError('tool_unavailable', `${req.name}: ${message}`, { cause: err });
      } finally {
        // A stateful server (one that gave a session id) is told the session is over.
        if (transport.sessionId) {
          await Promise.race([transport.terminateSession().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
        }
        await client.close().catch(() => {});
      }
    },
  };
}
