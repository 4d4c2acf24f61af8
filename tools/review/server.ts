/**
 * `review` tool server: posts and lists review comments (and, for operators, deletes
 * them: `delete_all`, which no agent should be granted). Posting is a side effect,
 * deduplicated by the caller's idempotency key (the token's run_id:seq), so a step
 * that runs again after a crash never posts twice. Run: `node tools/review/server.ts`
 * (REVIEW_STORE_FILE keeps comments across restarts).
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { callerOf, createToolServerApp, isMain, toolServerEnv } from '../lib/server.ts';
import { startTracing } from '../lib/tracing.ts';
import { serveTool } from '../lib/shutdown.ts';
import { type Comment, type CommentStore, createCommentStore } from './store.ts';

const CommentShape = {
  id: z.number(),
  repo: z.string(),
  pr: z.number(),
  body: z.string(),
  path: z.string().nullable(),
  line: z.number().nullable(),
  postedAt: z.string(),
  deliveries: z.number(),
};

const view = (c: Comment) => ({
  id: c.id,
  repo: c.repo,
  pr: c.pr,
  body: c.body,
  path: c.path,
  line: c.line,
  postedAt: c.postedAt,
  deliveries: c.deliveries,
});

export function registerReviewTools(store: CommentStore) {
  return (server: McpServer, only: ReadonlySet<string> | null) => {
    const allowed = (name: string) => !only || only.has(name);
    if (allowed('post_comment')) {
      server.registerTool(
        'post_comment',
        {
          description: 'Posts a review comment on a pull request. Idempotent per step: a repeat returns the first comment.',
          inputSchema: {
            repo: z.string().min(1).max(200),
            pr: z.number().int().min(1),
            body: z.string().min(1).max(65_536),
            path: z.string().max(1000).optional(),
            line: z.number().int().min(1).optional(),
          },
          outputSchema: { comment: z.object(CommentShape), created: z.boolean() },
        },
        async (args, extra) => {
          const { idempotencyKey } = callerOf(extra);
          const { comment, created } = store.post({
            idempotencyKey,
            repo: args.repo,
            pr: args.pr,
            body: args.body,
            path: args.path ?? null,
            line: args.line ?? null,
          });
          const structured = { comment: view(comment), created };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
    if (allowed('list_comments')) {
      server.registerTool(
        'list_comments',
        {
          description: 'Lists review comments, optionally for one repository and pull request.',
          inputSchema: { repo: z.string().max(200).optional(), pr: z.number().int().min(1).optional() },
          outputSchema: { comments: z.array(z.object(CommentShape)) },
        },
        async (args) => {
          const structured = { comments: store.list(args).map(view) };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
    if (allowed('delete_all')) {
      // Administrative and destructive: it exists so that operators can clean up, and so
      // that an agent's scope (which never includes it) is what stands between a
      // prompt-injected model and this tool.
      server.registerTool(
        'delete_all',
        {
          description: 'Deletes every review comment of a pull request (or, without pr, of a repository). Administrative.',
          inputSchema: { repo: z.string().min(1).max(200), pr: z.number().int().min(1).optional() },
          outputSchema: { deleted: z.number() },
        },
        async (args) => {
          const structured = { deleted: store.deleteAll(args) };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
  };
}

if (isMain(import.meta.url)) {
  await startTracing('baton-tool-review');
  const env = toolServerEnv();
  const store = createCommentStore(process.env.REVIEW_STORE_FILE);
  const app = createToolServerApp({
    name: 'review',
    publicKey: env.publicKey,
    allowedHosts: env.allowedHosts,
    register: registerReviewTools(store),
  });
  const { url } = await serveTool(app, { name: 'review', port: env.port, host: env.host });
  console.log(JSON.stringify({ server: 'review', url: `${url}/mcp` }));
}
