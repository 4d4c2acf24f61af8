/**
 * The declared tools' definitions for a step, from the gateway's `list` (MCP tools/list
 * with a listing token), cached per process for a short time: tool servers change on
 * deploys, not per call, and an agent's every model turn needs the list. A failed
 * listing is not cached (the next turn asks again).
 */
import type { ListedTool, ToolGateway, ToolListRequest } from './gateway.ts';

export type ToolDefinition = ListedTool;

/** How long this process reuses a server's list. */
export const TOOL_LIST_TTL_MS = 30_000;

type Cache = Map<string, { at: number; tools: Promise<ListedTool[]> }>;
// One cache per gateway (a process has one; tests build several platforms, each with its own servers).
let caches = new WeakMap<ToolGateway, Cache>();

/** Forgets every cached list. */
export function clearToolListCache(): void {
  caches = new WeakMap();
}

/** Every declared server's declared tools, in declaration order. */
export async function listDeclaredTools(gateway: ToolGateway, req: ToolListRequest, ttlMs = TOOL_LIST_TTL_MS): Promise<ListedTool[]> {
  const servers = Object.entries(req.scopes).filter(([, tools]) => tools.length > 0);
  let cache = caches.get(gateway);
  if (!cache) caches.set(gateway, (cache = new Map()));
  const lists = await Promise.all(
    servers.map(([server, declared]) => {
      const key = `${req.function}\n${server}\n${[...declared].sort().join(',')}`;
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < ttlMs) return hit.tools;
      const tools = gateway.list({ ...req, server });
      cache.set(key, { at: Date.now(), tools });
      tools.catch(() => {
        if (cache?.get(key)?.tools === tools) cache.delete(key);
      });
      return tools.then((list) => [...list].sort((a, b) => declared.indexOf(a.tool) - declared.indexOf(b.tool)));
    }),
  );
  return lists.flat();
}
