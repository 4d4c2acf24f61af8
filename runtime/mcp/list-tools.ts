/**
 * Tool discovery: `tools/list` on a declared MCP server, filtered to the function's
 * declared tools of that server, cached per process for a short time (tool servers
 * change on deploys, not per call; a step that runs every few seconds should not pay
 * a round trip each time).
 *
 * The listing is sent with a capability token for the step that asks (the run, its
 * seq, the declared tools of that server), so a Baton tool server lists only what the
 * function may call; whatever a server lists beyond the declaration is dropped here
 * too (a third-party server that ignores tokens lists everything).
 */
import type { KeyObject } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mintCapability } from '../../tools/lib/capability.ts';
import { BatonError } from '../errors.ts';

/** One tool a function may call, as its server describes it. */
export interface ToolDefinition {
  /** `server.tool` */
  name: string;
  server: string;
  tool: string;
  description: string;
  /** JSON Schema of the arguments (what the server lists as `inputSchema`). */
  inputSchema: Record<string, unknown>;
}

export interface ListRequest {
  runId: string;
  seq: number;
  function: string;
  scopes: Readonly<Record<string, readonly string[]>>;
  abortSignal: AbortSignal;
  deadline: number;
}

export interface ListDeps {
  urls: Readonly<Record<string, string>>;
  withoutToken?: readonly string[];
  signingKey: KeyObject | null;
}

/** How long a server's list is reused by this process. */
export const TOOL_LIST_TTL_MS = 30_000;
const TOKEN_MARGIN_S = 30;

const cache = new Map<string, { at: number; tools: Promise<ToolDefinition[]> }>();

/** Forgets cached lists (tests that change a server under a running process). */
export function clearToolListCache(): void {
  cache.clear();
}

async function listServer(deps: ListDeps, req: ListRequest, server: string, declared: readonly string[]): Promise<ToolDefinition[]> {
  const url = deps.urls[server];
  if (!url) {
    throw new BatonError('tool_unavailable', `no URL is configured for tool server "${server}" (set BATON_TOOL_${server.toUpperCase().replaceAll('-', '_')}_URL)`, {
      retryable: false,
    });
  }
  const headers: Record<string, string> = {};
  if (!deps.withoutToken?.includes(server)) {
    if (!deps.signingKey) throw new BatonError('tool_denied', 'no signing key is configured for capability tokens (BATON_TOOL_SIGNING_KEY)');
    const token = mintCapability(deps.signingKey, {
      aud: server,
      run: req.runId,
      seq: req.seq,
      fn: req.function,
      tools: [...declared],
      exp: Math.ceil(req.deadline / 1000) + TOKEN_MARGIN_S,
    });
    headers.Authorization = `Bearer ${token}`;
  }
  const client = new Client({ name: 'baton-gateway', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  try {
    const timeout = Math.max(1, req.deadline - Date.now());
    await client.connect(transport, { signal: req.abortSignal, timeout });
    const listed = await client.listTools(undefined, { signal: req.abortSignal, timeout });
    const wanted = new Set(declared);
    return listed.tools
      .filter((t) => wanted.has(t.name))
      .map((t) => ({
        name: `${server}.${t.name}`,
        server,
        tool: t.name,
        description: t.description ?? '',
        inputSchema: (t.inputSchema ?? { type: 'object' }) as Record<string, unknown>,
      }));
  } catch (err) {
    if (err instanceof BatonError) throw err;
    if (req.abortSignal.aborted) throw req.abortSignal.reason ?? err;
    throw new BatonError('tool_unavailable', `listing the tools of "${server}" failed: ${(err as Error).message}`, { cause: err });
  } finally {
    if (transport.sessionId) await transport.terminateSession().catch(() => {});
    await client.close().catch(() => {});
  }
}

/** The declared tools of every declared server, in declaration order (cached per server and scope). */
export async function listTools(deps: ListDeps, req: ListRequest, ttlMs = TOOL_LIST_TTL_MS): Promise<ToolDefinition[]> {
  const lists = await Promise.all(
    Object.entries(req.scopes).map(async ([server, declared]) => {
      if (declared.length === 0) return [];
      const key = `${server}\n${deps.urls[server] ?? ''}\n${[...declared].sort().join(',')}`;
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < ttlMs) return hit.tools;
      const tools = listServer(deps, req, server, declared);
      cache.set(key, { at: Date.now(), tools });
      // A failed listing is not cached: the next step asks again.
      tools.catch(() => cache.get(key)?.tools === tools && cache.delete(key));
      return tools;
    }),
  );
  const order = (d: ToolDefinition) => req.scopes[d.server]?.indexOf(d.tool) ?? 0;
  return lists.flatMap((list) => [...list].sort((a, b) => order(a) - order(b)));
}
