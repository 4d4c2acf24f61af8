/**
 * `git` tool server (read-only): lists the files changed and returns the diff of a
 * commit or a commit range in one configured repository (GIT_REPO, its top level;
 * default: the repository of the working directory). Run: `node tools/git/server.ts`.
 *
 * In a pod the repository is a volume an init container cloned into, or a claim, and
 * often owned by another user than the server's; git refuses such a repository
 * ("dubious ownership") unless it is named in safe.directory, so every git command
 * here trusts exactly the configured repository (its real path), nothing else.
 * `/readyz` fails while the repository is missing or unreadable, so the Service sends
 * no call to a server that would only fail it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createToolServerApp, isMain, logRefusal, toolServerEnv } from '../lib/server.ts';
import { startTracing } from '../lib/tracing.ts';
import { serveTool } from '../lib/shutdown.ts';

const run = promisify(execFile);

// A revision or `a..b`; never starting with '-', so it cannot smuggle an option into git.
const REV = /^(?!-)[A-Za-z0-9._/~^@{}-]{1,200}$/;
const RangeSchema = z
  .string()
  .refine((r) => r.split('..').length <= 2 && r.split('..').every((part) => REV.test(part)), {
    message: 'range must be a revision (e.g. HEAD) or a range a..b of revisions',
  })
  .default('HEAD');

/** The path git compares safe.directory with: the real path, without a trailing slash. */
function realPath(repo: string): string {
  try {
    return fs.realpathSync(repo);
  } catch {
    return path.resolve(repo);
  }
}

async function git(repo: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-c', `safe.directory=${realPath(repo)}`, '-C', repo, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** null when the repository is there and git can read its HEAD commit; otherwise why not. */
export async function repoProblem(repo: string): Promise<string | null> {
  try {
    await fs.promises.access(repo, fs.constants.R_OK | fs.constants.X_OK);
  } catch (err) {
    return `repository ${repo} is missing or unreadable (${(err as NodeJS.ErrnoException).code})`;
  }
  try {
    await git(repo, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']);
    return null;
  } catch (err) {
    const detail = String((err as { stderr?: string }).stderr ?? '').trim().split('\n')[0];
    return `repository ${repo} has no readable HEAD commit${detail ? `: ${detail}` : ''}`;
  }
}

/** `HEAD` → the changes of that commit; `a..b` → the changes between a and b; `paths` limit them (after `--`: never an option). */
function diffArgs(range: string, extra: string[], paths: string[] = []): string[] {
  const [from, to] = range.split('..');
  // A merge commit's changes are those against its first parent (what the merge brought in).
  return to === undefined
    ? ['show', '--format=', '--diff-merges=first-parent', ...extra, from, '--', ...paths]
    : ['diff', ...extra, from, to, '--', ...paths];
}

// A path in the repository: relative, no `..` segment, no pathspec magic (`:(…)`).
const PathSchema = z
  .string()
  .min(1)
  .max(1000)
  .refine((p) => !p.startsWith('/') && !p.startsWith(':') && !p.split('/').includes('..'), { message: 'path must be a file path inside the repository' });

export function registerGitTools(repo: string) {
  return (server: McpServer, only: ReadonlySet<string> | null) => {
    const allowed = (name: string) => !only || only.has(name);
    if (allowed('list_changed_files')) {
      server.registerTool(
        'list_changed_files',
        {
          description: 'Files changed by a commit (default HEAD) or a range a..b, with their status (A, M, D, R).',
          inputSchema: { range: RangeSchema },
          outputSchema: { range: z.string(), files: z.array(z.object({ status: z.string(), path: z.string() })) },
        },
        async ({ range }) => {
          const out = await git(repo, diffArgs(range, ['--name-status']));
          const files = out
            .split('\n')
            .filter(Boolean)
            .map((line) => {
              const [status, ...paths] = line.split('\t');
              return { status, path: paths.at(-1) ?? '' };
            });
          const structured = { range, files };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
    if (allowed('get_diff')) {
      server.registerTool(
        'get_diff',
        {
          description: 'The unified diff of a commit (default HEAD) or a range a..b, of one file (path) or of all, cut at maxBytes.',
          inputSchema: { range: RangeSchema, path: PathSchema.optional(), maxBytes: z.number().int().min(1).max(4_000_000).default(200_000) },
          outputSchema: { range: z.string(), commit: z.string(), diff: z.string(), truncated: z.boolean() },
        },
        async ({ range, path: file, maxBytes }) => {
          const [diff, commit] = await Promise.all([
            git(repo, diffArgs(range, ['--patch', '--no-color'], file ? [`:(literal)${file}`] : [])),
            git(repo, ['rev-parse', range.split('..').at(-1) ?? range]),
          ]);
          const truncated = Buffer.byteLength(diff) > maxBytes;
          const structured = {
            range,
            commit: commit.trim(),
            diff: truncated ? Buffer.from(diff).subarray(0, maxBytes).toString('utf8') : diff,
            truncated,
          };
          return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
        },
      );
    }
  };
}

export async function findRepo(dir: string): Promise<string | null> {
  try {
    return (await run('git', ['-C', dir, 'rev-parse', '--show-toplevel'])).stdout.trim();
  } catch {
    return null;
  }
}

if (isMain(import.meta.url)) {
  await startTracing('baton-tool-git');
  const env = toolServerEnv();
  const repo = process.env.GIT_REPO ?? (await findRepo(process.cwd()));
  if (!repo) throw new Error('GIT_REPO is not set and the working directory is not in a git repository');
  const app = createToolServerApp({
    name: 'git',
    publicKey: env.publicKey,
    allowedHosts: env.allowedHosts,
    maxTokenS: env.maxTokenS,
    onRefusal: logRefusal,
    register: registerGitTools(repo),
    ready: () => repoProblem(repo),
  });
  const { url } = await serveTool(app, { name: 'git', port: env.port, host: env.host });
  console.log(JSON.stringify({ server: 'git', url: `${url}/mcp`, repo }));
  const problem = await repoProblem(repo);
  if (problem) console.error(JSON.stringify({ server: 'git', ready: false, reason: problem }));
}
