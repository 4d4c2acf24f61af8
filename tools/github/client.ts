/**
 * The two GitHub REST endpoints the github tool server uses:
 *   GET  /repos/{owner}/{repo}/issues/{number}/comments   (paginated by Link headers)
 *   POST /repos/{owner}/{repo}/issues/{number}/comments
 * The token never leaves this module except in the Authorization header of a request
 * to the configured API origin: pagination links to any other origin are refused.
 */

export interface GitHubComment {
  id: number;
  html_url: string;
  body: string | null;
  user: { login: string } | null;
  created_at: string;
}

export interface GitHubClient {
  listComments(repo: RepoRef, number: number, signal?: AbortSignal): Promise<GitHubComment[]>;
  postComment(repo: RepoRef, number: number, body: string, signal?: AbortSignal): Promise<GitHubComment>;
}

export interface RepoRef {
  owner: string;
  name: string;
}

export interface GitHubClientOptions {
  /** e.g. https://api.github.com (GitHub Enterprise: https://host/api/v3). */
  apiUrl: string;
  /** Read per request, so a rotated token file is picked up without a restart. */
  token: () => string;
  timeoutMs?: number;
}

/** Enough for ten thousand comments on one pull request; beyond it, something is wrong. */
const MAX_PAGES = 100;

export class GitHubError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'GitHubError';
    this.status = status;
  }
}

function nextLink(header: string | null): string | null {
  for (const part of (header ?? '').split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part);
    if (m) return m[1];
  }
  return null;
}

export function createGitHubClient(opts: GitHubClientOptions): GitHubClient {
  const base = new URL(opts.apiUrl.endsWith('/') ? opts.apiUrl : `${opts.apiUrl}/`);
  const path = (repo: RepoRef, number: number) =>
    new URL(`repos/${encodeURIComponent(repo.owner)}/${encodeURIComponent(repo.name)}/issues/${number}/comments`, base);

  async function request(method: 'GET' | 'POST', url: URL, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 15_000);
    // Redirects (a renamed repository) are followed by hand, and only on the API's origin.
    for (let hops = 0; ; hops++) {
      if (url.origin !== base.origin) throw new GitHubError(502, `refusing to send the token to ${url.origin}, which is not ${base.origin}`);
      const res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${opts.token()}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
          'user-agent': 'baton-github-tool',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: 'manual',
      });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location && hops < 3) {
        await res.body?.cancel();
        url = new URL(location, url);
        continue;
      }
      if (res.ok) return res;
      const text = (await res.text().catch(() => '')).slice(0, 500);
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: keep the text
      }
      const hint =
        res.status === 401
          ? " (the tool server's GitHub token was refused)"
          : res.status === 404
            ? ' (no such repository or pull request, or the token cannot see it)'
            : '';
      throw new GitHubError(res.status, `GitHub answered ${res.status} to ${method} ${url.pathname}: ${message || res.statusText}${hint}`);
    }
  }

  return {
    async listComments(repo, number, signal) {
      const comments: GitHubComment[] = [];
      const first = path(repo, number);
      first.searchParams.set('per_page', '100');
      let url: URL | null = first;
      for (let page = 0; url && page < MAX_PAGES; page++) {
        const res: Response = await request('GET', url, undefined, signal);
        comments.push(...((await res.json()) as GitHubComment[]));
        const next = nextLink(res.headers.get('link'));
        url = next ? new URL(next, base) : null;
      }
      if (url) throw new GitHubError(502, `more than ${MAX_PAGES} pages of comments on ${repo.owner}/${repo.name}#${number}`);
      return comments;
    },
    async postComment(repo, number, body, signal) {
      const res = await request('POST', path(repo, number), { body }, signal);
      return (await res.json()) as GitHubComment;
    },
  };
}
