/**
 * The git, review (and optionally github) tool servers on loopback ports, like the
 * embedded mode's, but for attack tests: the git tool serves a repository of the
 * test's choosing, and every request's bearer token and JSON-RPC body is recorded, so
 * a test can replay a real step's token where it does not belong.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Hono } from 'hono';
import { loadPublicKey } from '../../tools/lib/capability.ts';
import { createToolServerApp, listen } from '../../tools/lib/server.ts';
import { registerGitTools } from '../../tools/git/server.ts';
import { createGitHubClient } from '../../tools/github/client.ts';
import { githubTouches, registerGitHubTools } from '../../tools/github/server.ts';
import type { ToolPolicy } from '../../tools/lib/policy.ts';
import { registerReviewTools, reviewTouches } from '../../tools/review/server.ts';
import { type CommentStore, createCommentStore } from '../../tools/review/store.ts';

export interface SeenRequest {
  server: string;
  token: string | null;
  status: number;
  /** JSON-RPC method and, for tools/call, the tool. */
  method: string | null;
  tool: string | null;
  /** The arguments of a tools/call. */
  args: Record<string, unknown> | null;
}

export interface ToolServers {
  /** MCP endpoint URLs by server name. */
  urls: Record<string, string>;
  seen: SeenRequest[];
  review: CommentStore;
  /** Tokens the gateway really sent to `server` for tools/call of `tool`. */
  tokensFor(server: string, tool: string): string[];
  close(): Promise<void>;
}

export async function startToolServers(opts: {
  publicKeyPem: string;
  repo: string;
  github?: { apiUrl: string; token: string };
  /** BATON_TOOL_POLICY of the github and review servers (default: none, allow all). */
  policy?: ToolPolicy | null;
}): Promise<ToolServers> {
  const publicKey = loadPublicKey(opts.publicKeyPem);
  const allowedHosts = ['127.0.0.1', 'localhost'];
  const review = createCommentStore();
  const seen: SeenRequest[] = [];
  const registrations = {
    git: registerGitTools(opts.repo),
    review: registerReviewTools(review),
    ...(opts.github ? { github: registerGitHubTools(createGitHubClient({ apiUrl: opts.github.apiUrl, token: () => opts.github?.token ?? '' })) } : {}),
  };
  const urls: Record<string, string> = {};
  const closers: Array<() => Promise<void>> = [];
  const touches = { github: githubTouches, review: reviewTouches } as Record<string, typeof githubTouches | undefined>;
  for (const [name, register] of Object.entries(registrations)) {
    const inner = createToolServerApp({ name, publicKey, allowedHosts, register, policy: opts.policy ?? null, touches: touches[name] });
    const outer = new Hono();
    outer.all('*', async (c) => {
      const token = /^Bearer (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1] ?? null;
      let rpc: { method?: string; params?: { name?: string; arguments?: Record<string, unknown> } } = {};
      if (c.req.method === 'POST') rpc = ((await c.req.raw.clone().json().catch(() => ({}))) ?? {}) as typeof rpc;
      const res = await inner.fetch(c.req.raw);
      const call = rpc.method === 'tools/call';
      seen.push({ server: name, token, status: res.status, method: rpc.method ?? null, tool: call ? (rpc.params?.name ?? null) : null, args: call ? (rpc.params?.arguments ?? {}) : null });
      return res;
    });
    const served = await listen(outer, 0, '127.0.0.1');
    urls[name] = `${served.url}/mcp`;
    closers.push(served.close);
  }
  return {
    urls,
    seen,
    review,
    tokensFor: (server, tool) =>
      seen.filter((s) => s.server === server && s.tool === tool && s.token && s.status === 200).map((s) => s.token as string),
    close: async () => {
      await Promise.all(closers.map((close) => close()));
    },
  };
}

/** A throwaway git repository with one commit per entry of `commits` (file → content). */
export function makeRepo(dir: string, commits: Array<{ message: string; files: Record<string, string> }>): string {
  fs.mkdirSync(dir, { recursive: true });
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, '-c', 'user.name=Test', '-c', 'user.email=test@localhost', '-c', 'commit.gpgsign=false', ...args], {
      stdio: 'pipe',
    })
      .toString()
      .trim();
  git('init', '-q', '-b', 'main');
  for (const c of commits) {
    for (const [file, content] of Object.entries(c.files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), content);
    }
    git('add', '-A');
    git('commit', '-q', '-m', c.message);
  }
  return dir;
}
