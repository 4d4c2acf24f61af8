/**
 * A probe tool server for chaos tests: one MCP tool, `record`, that does NOT
 * deduplicate. It counts raw deliveries per idempotency key (`run_id:seq`), so a test
 * sees every time a step's call reached a tool server, whatever the engine or the
 * ledger make of it. A call with `{ hold: true }` is held, on its first delivery, until
 * the test lets it go (or the server closes): a call in flight at the tool server.
 */
import { z } from 'zod';
import { loadPublicKey } from '../../tools/lib/capability.ts';
import { callerOf, createToolServerApp, listen } from '../../tools/lib/server.ts';

export interface ProbeTool {
  url: string;
  /** Raw deliveries per idempotency key. */
  deliveries: Map<string, number>;
  /** Keys whose first delivery is being held now. */
  held: Set<string>;
  release(key: string): void;
  close(): Promise<void>;
}

export async function startProbeTool(publicKeyPem: string): Promise<ProbeTool> {
  const deliveries = new Map<string, number>();
  const held = new Set<string>();
  const releases = new Map<string, () => void>();
  const app = createToolServerApp({
    name: 'probe',
    publicKey: loadPublicKey(publicKeyPem),
    allowedHosts: ['127.0.0.1', 'localhost'],
    register: (server) => {
      server.registerTool(
        'record',
        { description: 'Counts this delivery (no deduplication).', inputSchema: { hold: z.boolean().optional() } },
        async (args, extra) => {
          const key = callerOf(extra).idempotencyKey ?? 'none';
          const n = (deliveries.get(key) ?? 0) + 1;
          deliveries.set(key, n);
          if (args.hold && n === 1) {
            held.add(key);
            await new Promise<void>((resolve) => releases.set(key, resolve));
            held.delete(key);
          }
          return { content: [{ type: 'text', text: JSON.stringify({ delivery: n }) }], structuredContent: { delivery: n } };
        },
      );
    },
  });
  const served = await listen(app, 0, '127.0.0.1');
  const releaseAll = () => {
    for (const r of releases.values()) r();
    releases.clear();
  };
  return {
    url: `${served.url}/mcp`,
    deliveries,
    held,
    release(key) {
      releases.get(key)?.();
      releases.delete(key);
    },
    async close() {
      releaseAll();
      await served.close();
    },
  };
}
