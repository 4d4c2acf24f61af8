/**
 * `github` tool server: the review operations (post and list comments on a pull
 * request) against the GitHub REST API, with a token that only this process holds:
 * GITHUB_TOKEN, or GITHUB_TOKEN_FILE (a mounted Secret; read on every call, so a
 * rotated token is used without a restart). GITHUB_API_URL (default
 * https://api.github.com) points it at GitHub Enterprise or a test stub.
 * Run: `node tools/github/server.ts`.
 *
 * Idempotency: a post is a side effect in the tool ledger (tools/lib/ledger.ts), keyed
 * by the step's `run_id:seq`: one replica reserves the key with an atomic insert, posts,
 * and records the comment; a replica that gets the same key meanwhile waits for that
 * result instead of posting. The comment also carries a hidden marker
 * `<!-- baton:<run_id>:<seq> -->`: when a reservation's holder died mid-post (or its
 * post failed), the replica that takes it over first searches the pull request's
 * comments for the marker, and posts only when it is not there. GitHub's list is not
 * guaranteed to show a comment right after it is written, which is why the marker
 * search is the recovery path and not the lock. Markers that arrive in a caller's text
 * are defused, so nobody can pre-empt another step's comment.
 */
import fs from 'node:fs';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { digestArgs } from '../lib/digest.ts';
import { type Ledger, createMemoryLedger } from '../lib/ledger.ts';
import { ledgerFromEnv } from '../lib/ledger-pg.ts';
import { type Touches, noPolicyWarning } from '../lib/policy.ts';
import { callerOf, createToolServerApp, isMain, logRefusal, toolServerEnv } from '../lib/server.ts';
import { startTracing } from '../lib/tracing.ts';
import { serveTool } from '../lib/shutdown.ts';
import { createGitHubClient, type GitHubClient, type GitHubComment, type RepoRef } from './client.ts';

const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
// `.` and `..` would walk out of /repos/{owner}/{repo} once the URL is normalised.
const NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,100}$/;

const RepoSchema = z
  .string()
  .max(140)
  .refine((s) => {
    const [owner, name, ...rest] = s.split('/');
    return rest.length === 0 && OWNER.test(owner ?? '') && NAME.test(name ?? '');
  }, 'repo must be "owner/name"');

const marker = (key: string) => `<!-- baton:${key} -->`;
const MARKER_ANYWHERE = /<!--\s*baton:/gi;
const MARKER_TRAILER = /\n*<!-- baton:[^\s>]+ -->\s*$/;

const split = (repo: string): RepoRef => {
  const [owner, name] = repo.split('/');
  return { owner, name };
};

const CommentShape = {
  id: z.number(),
  url: z.string(),
  body: z.string(),
  author: z.string().nullable(),
  createdAt: z.string(),
};

const view = (c: GitHubComment) => ({
  id: c.id,
  url: c.html_url,
  body: (c.body ?? '').replace(MARKER_TRAILER, ''),
  author: c.user?.login ?? null,
  createdAt: c.created_at,
});

/** What a github call touches, for the tenant policy: its repository. */
export function githubTouches(_tool: string, args: Record<string, unknown>): Touches {
  return typeof args.repo === 'string' ? { repos: [args.repo] } : { repos: 'all' };
}

export function registerGitHubTools(github: GitHubClient, ledger: Ledger = createMemoryLedger()) {
  return (server: McpServer, only: ReadonlySet<string> | null) => {
    const allowed = (name: string) => !only || only.has(name);
    if (allowed('post_comment')) {
      server.registerTool(
        'post_comment',
        {
          description: 'Posts a comment on a GitHub pull request. Idempotent per step: a repeat returns the first comment.',
          inputSchema: {
            repo: RepoSchema,
            pr: z.number().int().min(1).max(1_000_000_000),
            body: z.string().min(1).max(65_000),
          },
          outputSchema: { comment: z.object(CommentShape), created: z.boolean() },
        },
        async (args, extra) => {
          const { idempotencyKey, argsDigest, tenant } = callerOf(extra);
          const repo = split(args.repo);
          const body = args.body.replace(MARKER_ANYWHERE, '&lt;!-- baton:');
          let structured: { comment: ReturnType<typeof view>; created: boolean };
          if (!idempotencyKey) {
            structured = { comment: view(await github.postComment(repo, args.pr, body, extra.signal)), created: true };
          } else {
            const entry = { key: idempotencyKey, server: 'github', tool: 'post_comment', argsDigest: argsDigest ?? digestArgs(args), tenant };
            const outcome = await ledger.once(entry, {
              recover: async () => {
                const existing = (await github.listComments(repo, args.pr, extra.signal)).find((c) => c.body?.includes(marker(idempotencyKey)));
                return existing ? view(existing) : null;
              },
              act: async () => view(await github.postComment(repo, args.pr, `${body}\n\n${marker(idempotencyKey)}`, extra.signal)),
            });
            structured = { comment: outcome.result, created: !outcome.replayed };
          }
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
    if (allowed('list_comments')) {
      server.registerTool(
        'list_comments',
        {
          description: 'Lists the comments of a GitHub pull request.',
          inputSchema: { repo: RepoSchema, pr: z.number().int().min(1).max(1_000_000_000) },
          outputSchema: { comments: z.array(z.object(CommentShape)) },
        },
        async (args, extra) => {
          const structured = { comments: (await github.listComments(split(args.repo), args.pr, extra.signal)).map(view) };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
  };
}

/** The GitHub settings of this process's environment; the token is only ever read here. */
export function githubEnv(env: NodeJS.ProcessEnv = process.env): { apiUrl: string; token: () => string } {
  const file = env.GITHUB_TOKEN_FILE;
  const inline = env.GITHUB_TOKEN;
  if (!file && !inline) throw new Error('GITHUB_TOKEN or GITHUB_TOKEN_FILE (a mounted secret) is required');
  const token = file ? () => fs.readFileSync(file, 'utf8').trim() : () => inline as string;
  if (!token()) throw new Error('the GitHub token is empty');
  return { apiUrl: env.GITHUB_API_URL ?? 'https://api.github.com', token };
}

if (isMain(import.meta.url)) {
  await startTracing('baton-tool-github');
  const env = toolServerEnv();
  const gh = githubEnv();
  if (!env.policy) process.stderr.write(noPolicyWarning('github'));
  const ledger = ledgerFromEnv('github');
  const app = createToolServerApp({
    name: 'github',
    publicKey: env.publicKey,
    allowedHosts: env.allowedHosts,
    maxTokenS: env.maxTokenS,
    onRefusal: logRefusal,
    policy: env.policy,
    touches: githubTouches,
    register: registerGitHubTools(createGitHubClient(gh), ledger),
    ready: () => ledger.problem(),
  });
  const { url } = await serveTool(app, { name: 'github', port: env.port, host: env.host });
  console.log(JSON.stringify({ server: 'github', url: `${url}/mcp`, api: gh.apiUrl, ledger: ledger.kind }));
}
