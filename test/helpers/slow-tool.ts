/**
 * `slow`: an MCP tool server (the real tool-server app, capability tokens checked) with
 * one tool, `sleep({ ms, tag })`, that waits and reports when it ran and for whom
 * (the token's run:seq), so a test can see which calls overlapped.
 */
import { z } from 'zod';
import { loadPublicKey } from '../../tools/lib/capability.ts';
import { callerOf, createToolServerApp, listen } from '../../tools/lib/server.ts';

export interface SleepWindow {
  tag: string;
  key: string | null;
  startedAt: number;
  endedAt: number;
}

export async function startSlowTool(publicKeyPem: string): Promise<{ url: string; windows: SleepWindow[]; close(): Promise<void> }> {
  const windows: SleepWindow[] = [];
  const app = createToolServerApp({
    name: 'slow',
    publicKey: loadPublicKey(publicKeyPem),
    allowedHosts: ['127.0.0.1', 'localhost'],
    register: (server, only) => {
      if (only && !only.has('sleep')) return;
      server.registerTool(
        'sleep',
        {
          description: 'Waits ms milliseconds, then says when it ran.',
          inputSchema: { ms: z.number().int().min(0).max(10_000), tag: z.string().max(100) },
          outputSchema: { tag: z.string(), startedAt: z.number(), endedAt: z.number() },
        },
        async ({ ms, tag }, extra) => {
          const startedAt = Date.now();
          await new Promise((resolve) => setTimeout(resolve, ms));
          const window = { tag, key: callerOf(extra).idempotencyKey, startedAt, endedAt: Date.now() };
          windows.push(window);
          const structured = { tag, startedAt, endedAt: window.endedAt };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    },
  });
  const served = await listen(app, 0, '127.0.0.1');
  return { url: `${served.url}/mcp`, windows, close: served.close };
}
