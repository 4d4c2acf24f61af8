/**
 * The deploy configuration `scripts/e2e-kind.sh` uses on its throwaway kind cluster:
 * the demo at its smallest (one instance of everything), the image loaded into kind
 * (`dev.local/` is a prefix Knative does not try to resolve in a registry), and a git
 * tool whose init container builds its repository from the image's own files, so the
 * run needs no network beyond the operators' manifests and images. pr-review's pods
 * also crash themselves now and then in the middle of a call (fault points), on top
 * of the pod the script deletes.
 */
import { defineConfig } from './deploy/config.ts';

const commit = 'git -c user.name=e2e -c user.email=e2e@example.org commit -q';
const SEED = [
  'set -eu',
  'cd /srv/repo',
  'git init -q',
  'cp -r /app/functions .',
  'git add .',
  `${commit} -m base`,
  "printf '// TODO: handle the empty diff\\nconsole.log(process.env);\\n' >> functions/pr-review/index.ts",
  `${commit} -am change`,
].join('\n');

export default defineConfig({
  namespace: 'baton-e2e',
  image: 'dev.local/baton:e2e',
  mode: 'knative',
  database: { instances: 1, storage: '1Gi', maxConnections: 100, pooler: { instances: 1, defaultPoolSize: 10, maxClientConn: 300 } },
  toolLedger: { instances: 1, storage: '1Gi' },
  toolPolicy: { tenants: { e2e: { repos: ['acme/*'] } } },
  monitoringNamespace: null,
  api: { replicas: 1 },
  tools: {
    git: {
      env: { GIT_REPO: '/srv/repo' },
      ledger: false,
      volumes: { repo: { mountPath: '/srv/repo', emptyDir: { sizeLimit: '256Mi' } } },
      initContainers: [{ name: 'seed', command: ['sh', '-c', SEED] }],
    },
    review: { env: { REVIEW_STORE_FILE: '/data/review-comments.jsonl' }, writableDirs: ['/data'] },
  },
  defaults: { concurrency: 8, lagCount: 2, pendingEntriesCount: 6, minReplicas: 0, maxReplicas: 3 },
  functions: { 'pr-review': { env: { BATON_TEST_HOOKS: '1', BATON_FAULTS: 'during-call=0.05' } } },
});
