/**
 * `baton deploy` configuration (scripts/deploy/config.ts documents every key).
 * Flags override it: `npx baton deploy --namespace NS --image IMAGE --mode worker`.
 */
import { defineConfig } from './scripts/deploy/config.ts';

export default defineConfig({
  namespace: 'baton',
  image: 'ghcr.io/baton-dev/baton:0.1.0',
  mode: 'knative',
  database: { instances: 3, storage: '10Gi', maxConnections: 200, pooler: { instances: 2, defaultPoolSize: 20, maxClientConn: 1000 } },
  redis: { embedded: { image: 'redis:7.4-alpine' } },
  // Secret with OPENAI_API_KEY (optionally OPENAI_BASE_URL); leave it out for the offline model.
  llm: {},
  // What each tenant's runs may touch, enforced by every tool server (no tenant: nothing).
  toolPolicy: { tenants: { acme: { repos: ['acme/*'] } } },
  toolLedger: { instances: 2, storage: '2Gi' },
  tools: {
    // Read-only diffs of the repository at GIT_REPO, cloned by an init container before the server starts.
    git: {
      env: { GIT_REPO: '/srv/repo' },
      ledger: false,
      volumes: { repo: { mountPath: '/srv/repo', emptyDir: { sizeLimit: '2Gi' } } },
      initContainers: [{ name: 'clone', command: ['git', 'clone', '--depth=50', '--no-tags', '--', 'https://github.com/baton-dev/baton.git', '/srv/repo'] }],
    },
    // Posted comments, one JSON line each, deduplicated by run_id:seq.
    review: { env: { REVIEW_STORE_FILE: '/data/review-comments.jsonl' }, writableDirs: ['/data'] },
    // The github server reads its token from a mounted file (create the Secret first:
    // kubectl -n baton create secret generic github-token --from-file=token=./token):
    // github: { secretFiles: { GITHUB_TOKEN_FILE: { secret: 'github-token', key: 'token' } } },
  },
  defaults: { concurrency: 32, lagCount: 5, pendingEntriesCount: 16, minReplicas: 0, maxReplicas: 20 },
  functions: { 'pr-review': { concurrency: 16 } },
});
