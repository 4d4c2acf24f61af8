/**
 * The pieces of the embedded mode that live under the data directory (.baton/):
 * a lock (PGlite admits one process), the local API key, and the demo's tool servers
 * (git and review), served in-process by `baton dev` and by `baton tools`. The
 * signing key pair is in signing-keys.ts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadPublicKey } from '../../tools/lib/capability.ts';
import { createToolServerApp, listen } from '../../tools/lib/server.ts';
import { findRepo, registerGitTools } from '../../tools/git/server.ts';
import { registerReviewTools } from '../../tools/review/server.ts';
import { type CommentStore, createCommentStore } from '../../tools/review/store.ts';
import type { Db } from '../../runtime/db/connect.ts';
import { createApiKey, tenantOfKey } from '../../runtime/store/api-keys.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Takes `<dir>/lock` for this process; refuses while another live process holds it. */
export function takeLock(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'lock');
  try {
    const pid = Number(fs.readFileSync(file, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`another Baton (pid ${pid}) is using ${dir}; stop it first, or set BATON_DATA_DIR`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(file, String(process.pid));
  return () => fs.rmSync(file, { force: true });
}

/** The local API key: reused across restarts (kept in `<dir>/api-key`, mode 0600). */
export async function localApiKey(db: Db, dir: string): Promise<string> {
  const file = path.join(dir, 'api-key');
  if (fs.existsSync(file)) {
    const key = fs.readFileSync(file, 'utf8').trim();
    if (await tenantOfKey(db, key)) return key;
  }
  const { key } = await createApiKey(db, 'local', 'created by baton dev');
  fs.writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}

function hasCommits(repo: string): boolean {
  try {
    execFileSync('git', ['-C', repo, 'rev-parse', '--verify', '-q', 'HEAD'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The repository the demo reviews: the one we run in, else this code's, else a small one made for the demo. */
export async function demoRepository(dir: string): Promise<string> {
  if (process.env.GIT_REPO) return process.env.GIT_REPO;
  for (const candidate of [await findRepo(process.cwd()), await findRepo(ROOT)]) {
    if (candidate && hasCommits(candidate)) return candidate;
  }
  const repo = path.join(dir, 'demo-repo');
  if (!fs.existsSync(path.join(repo, '.git'))) {
    fs.mkdirSync(repo, { recursive: true });
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', repo, '-c', 'user.name=Baton', '-c', 'user.email=baton@localhost', ...args], { stdio: 'ignore' });
    git('init', '-q');
    fs.writeFileSync(path.join(repo, 'cart.js'), 'export function total(items) {\n  return items.reduce((s, i) => s + i.price, 0);\n}\n');
    git('add', '.');
    git('commit', '-q', '-m', 'cart: total');
    fs.writeFileSync(
      path.join(repo, 'cart.js'),
      'export function total(items, discount = 0) {\n  // TODO: validate discount\n  console.log(items);\n  return items.reduce((s, i) => s + i.price * i.qty, 0) * (1 - discount);\n}\n',
    );
    // Two files in the last commit: an agent reviewing it reads both diffs at once (parallel calls).
    fs.writeFileSync(
      path.join(repo, 'cart.test.js'),
      "import { total } from './cart.js';\n\nconsole.assert(total([{ price: 2, qty: 3 }]) === 6);\n",
    );
    git('add', '.');
    git('commit', '-q', '-m', 'cart: quantities and discounts');
  }
  return repo;
}

export interface LocalTools {
  urls: Record<string, string>;
  repo: string;
  /** The review server's comments (tests count side effects per idempotency key). */
  reviews: CommentStore;
  close(): Promise<void>;
}

/** Serves the git and review tool servers on loopback ports (free ones by default), verifying tokens with `publicKeyPem`. */
export async function startLocalTools(dir: string, publicKeyPem: string, opts: { ports?: [number, number] } = {}): Promise<LocalTools> {
  const publicKey = loadPublicKey(publicKeyPem);
  const allowedHosts = ['127.0.0.1', 'localhost'];
  const repo = await demoRepository(dir);
  const [gitPort, reviewPort] = opts.ports ?? [0, 0];
  const git = await listen(createToolServerApp({ name: 'git', publicKey, allowedHosts, register: registerGitTools(repo) }), gitPort, '127.0.0.1');
  const store = createCommentStore(path.join(dir, 'review-comments.jsonl'));
  const review = await listen(
    createToolServerApp({ name: 'review', publicKey, allowedHosts, register: registerReviewTools(store) }),
    reviewPort,
    '127.0.0.1',
  );
  return {
    urls: { git: `${git.url}/mcp`, review: `${review.url}/mcp` },
    repo,
    reviews: store,
    close: async () => {
      await Promise.all([git.close(), review.close()]);
    },
  };
}
