/**
 * `review` tool server: posts and lists review comments (and, for operators, deletes
 * them: `delete_all`, which no agent should be granted). Posting is a side effect,
 * recorded in the tool ledger under the caller's idempotency key (the token's
 * run_id:seq), so a step that runs again after a crash, on any replica, never posts
 * twice. Run: `node tools/review/server.ts`. With BATON_TOOL_LEDGER_URL the comments
 * live in the ledger database (shared by all replicas); without it, in memory or in
 * REVIEW_STORE_FILE (one replica).
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { digestArgs } from '../lib/digest.ts';
import { type Ledger, createMemoryLedger } from '../lib/ledger.ts';
import { type PgLedger, ledgerFromEnv } from '../lib/ledger-pg.ts';
import type { Touches } from '../lib/policy.ts';
import { noPolicyWarning } from '../lib/policy.ts';
import { callerOf, createToolServerApp, isMain, logRefusal, toolServerEnv } from '../lib/server.ts';
import { startTracing } from '../lib/tracing.ts';
import { serveTool } from '../lib/shutdown.ts';
import { type Comment, type CommentStore, createCommentStore } from './store.ts';
import { REVIEW_DDL, createPgCommentStore } from './store-pg.ts';

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

/** What a review call touches, for the tenant policy: its repository, or every one when it names none. */
export function reviewTouches(_tool: string, args: Record<string, unknown>): Touches {
  return typeof args.repo === 'string' ? { repos: [args.repo] } : { repos: 'all' };
}

export function registerReviewTools(store: CommentStore, ledger: Ledger = createMemoryLedger()) {
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
          const { idempotencyKey, argsDigest, tenant } = callerOf(extra);
          const input = { idempotencyKey, repo: args.repo, pr: args.pr, body: args.body, path: args.path ?? null, line: args.line ?? null };
          let structured: { comment: ReturnType<typeof view>; created: boolean };
          if (!idempotencyKey) {
            const { comment, created } = await store.post(input);
            structured = { comment: view(comment), created };
          } else {
            const entry = { key: idempotencyKey, server: 'review', tool: 'post_comment', argsDigest: argsDigest ?? digestArgs(args), tenant };
            const outcome = await ledger.once(entry, {
              recover: async () => {
                const seen = await store.byKey(idempotencyKey, false);
                return seen ? view(seen) : null;
              },
              act: async () => view((await store.post(input)).comment),
            });
            // A repeat the ledger answered is one more delivery; it shows the comment as stored now.
            const now = outcome.replayed ? await store.byKey(idempotencyKey, true) : null;
            structured = { comment: now ? view(now) : outcome.result, created: !outcome.replayed };
          }
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
          const structured = { comments: (await store.list(args)).map(view) };
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
          const structured = { deleted: await store.deleteAll(args) };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
  };
}

if (isMain(import.meta.url)) {
  await startTracing('baton-tool-review');
  const env = toolServerEnv();
  if (!env.policy) process.stderr.write(noPolicyWarning('review'));
  const ledger = ledgerFromEnv('review', process.env, REVIEW_DDL);
  const store = ledger.kind === 'postgres' ? createPgCommentStore(ledger as PgLedger) : createCommentStore(process.env.REVIEW_STORE_FILE);
  const app = createToolServerApp({
    name: 'review',
    publicKey: env.publicKey,
    allowedHosts: env.allowedHosts,
    maxTokenS: env.maxTokenS,
    onRefusal: logRefusal,
    policy: env.policy,
    touches: reviewTouches,
    register: registerReviewTools(store, ledger),
    ready: () => ledger.problem(),
  });
  const { url } = await serveTool(app, { name: 'review', port: env.port, host: env.host });
  console.log(JSON.stringify({ server: 'review', url: `${url}/mcp`, ledger: ledger.kind }));
}
