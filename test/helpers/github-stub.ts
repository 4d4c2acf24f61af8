/**
 * A local stand-in for the two GitHub REST endpoints the github tool server uses
 * (list and create issue comments), on a loopback port. It checks the bearer token
 * like GitHub does (401 "Bad credentials") and paginates with Link headers. Like
 * GitHub, it can be slow to write (`postDelayMs`) and slow to show a new comment in
 * the list (`listLagMs`: its list is not guaranteed to show a comment right away).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import { Hono } from 'hono';

export interface StubComment {
  id: number;
  html_url: string;
  body: string;
  user: { login: string };
  created_at: string;
}

export interface GitHubStub {
  url: string;
  /** Comments by `owner/repo#number`. */
  comments: Map<string, StubComment[]>;
  requests: Array<{ method: string; path: string; authorization: string | undefined }>;
  close(): Promise<void>;
}

export async function startGitHubStub(opts: { token: string; pageSize?: number; linkOrigin?: string; postDelayMs?: number; listLagMs?: number }): Promise<GitHubStub> {
  const comments = new Map<string, StubComment[]>();
  const requests: GitHubStub['requests'] = [];
  const pageSize = opts.pageSize ?? 100;
  let nextId = 1000;
  const app = new Hono();
  app.use(async (c, next) => {
    requests.push({ method: c.req.method, path: new URL(c.req.url).pathname, authorization: c.req.header('authorization') });
    if (c.req.header('authorization') !== `Bearer ${opts.token}`) return c.json({ message: 'Bad credentials' }, 401);
    return next();
  });
  const key = (c: { req: { param(name: string): string } }) => `${c.req.param('owner')}/${c.req.param('repo')}#${c.req.param('number')}`;
  app.get('/repos/:owner/:repo/issues/:number/comments', (c) => {
    const visibleBefore = Date.now() - (opts.listLagMs ?? 0);
    const all = (comments.get(key(c)) ?? []).filter((x) => Date.parse(x.created_at) <= visibleBefore);
    const page = Math.max(1, Number(c.req.query('page') ?? 1));
    const slice = all.slice((page - 1) * pageSize, page * pageSize);
    if (page * pageSize < all.length) {
      const next = new URL(c.req.url);
      next.searchParams.set('page', String(page + 1));
      // A hostile or misconfigured API could point the next page elsewhere.
      if (opts.linkOrigin) {
        const other = new URL(opts.linkOrigin);
        next.protocol = other.protocol;
        next.host = other.host;
      }
      c.header('Link', `<${next}>; rel="next"`);
    }
    return c.json(slice);
  });
  app.post('/repos/:owner/:repo/issues/:number/comments', async (c) => {
    const { body } = (await c.req.json()) as { body?: unknown };
    if (typeof body !== 'string' || !body) return c.json({ message: 'Validation Failed' }, 422);
    if (opts.postDelayMs) await sleep(opts.postDelayMs);
    const list = comments.get(key(c)) ?? [];
    const comment: StubComment = {
      id: nextId++,
      html_url: `https://github.example/${c.req.param('owner')}/${c.req.param('repo')}/pull/${c.req.param('number')}#issuecomment-${nextId}`,
      body,
      user: { login: 'baton-bot' },
      created_at: new Date().toISOString(),
    };
    list.push(comment);
    comments.set(key(c), list);
    return c.json(comment, 201);
  });
  app.notFound((c) => c.json({ message: 'Not Found' }, 404));

  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        comments,
        requests,
        close: () =>
          new Promise((done) => {
            (server as Server).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
