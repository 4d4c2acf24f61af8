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
  tools: {
    // Read-only diffs of the repository mounted at GIT_REPO.
    git: { env: { GIT_REPO: '/srv/repo' } },
    // Posted comments, one JSON line each, deduplicated by run_id:seq.
    review: { env: { REVIEW_STORE_FILE: '/data/review-comments.jsonl' }, writableDirs: ['/data'] },
  },
  defaults: { concurrency: 32, lagCount: 5, pendingEntriesCount: 16, minReplicas: 0, maxReplicas: 20 },
  functions: { 'pr-review': { concurrency: 16 } },
});
