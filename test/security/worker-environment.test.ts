/**
 * Attack surface 3, the environment. Baton runs as in production, one process per
 * role: the API (`baton api`), a worker (`baton worker`) and the github tool server,
 * which alone is given GITHUB_TOKEN. A run posts a pull-request comment through it;
 * the kernel's record of each process's environment (/proc/<pid>/environ) shows the
 * token only in the tool server, and the signing key only in the worker.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadFunctions } from '../../runtime/functions.ts';
import { createApiKey } from '../../runtime/store/api-keys.ts';
import { startGitHubStub, type GitHubStub } from '../helpers/github-stub.ts';
import { type TestPlatform, startTestPlatform, waitForRun } from '../helpers/platform.ts';
import { type Child, ROOT, environOf, spawnNode } from '../helpers/spawn.ts';

const GITHUB_TOKEN = 'ghp_only_the_tool_server_has_this_0123456789';
const FIXTURES = path.join(ROOT, 'test/fixtures/functions');

let stub: GitHubStub;
let githubTool: Child;
let worker: Child;
let api: Child;
let apiUrl: string;
let t: TestPlatform;

before(async () => {
  stub = await startGitHubStub({ token: GITHUB_TOKEN });
  // The platform here only provides a database, a Redis prefix and the key pair; it runs no worker.
  t = await startTestPlatform({ worker: false, tools: false, llm: 'offline', functions: await loadFunctions(FIXTURES, ['gh-review']) });

  githubTool = spawnNode(['tools/github/server.ts'], {
    PORT: '0',
    HOST: '127.0.0.1',
    BATON_TOOL_PUBLIC_KEY: Buffer.from(t.keys.publicKeyPem).toString('base64'),
    GITHUB_TOKEN,
    GITHUB_API_URL: stub.url,
  });
  const toolUrl = JSON.parse((await githubTool.waitFor(/^\{.*"server":"github".*\}$/m))[0]).url as string;

  // What the platform hands its own processes, minus what is only for in-process tests.
  const base: Record<string, string> = { ...t.env, BATON_FUNCTIONS_DIR: FIXTURES };
  delete base.BATON_TOOL_GIT_URL;
  delete base.BATON_TOOL_REVIEW_URL;
  worker = spawnNode(['scripts/baton.ts', 'worker', 'gh-review'], { ...base, BATON_TOOL_GITHUB_URL: toolUrl });
  // The API calls no tool: it gets neither tool URLs nor the signing key.
  const apiEnv: Record<string, string> = { ...base, BATON_AUTH: 'on', PORT: '0', HOST: '127.0.0.1' };
  delete apiEnv.BATON_TOOL_SIGNING_KEY;
  api = spawnNode(['scripts/baton.ts', 'api'], apiEnv);
  apiUrl = (await api.waitFor(/listening on (http:\/\/\S+)/))[1];
  await worker.waitFor(/baton worker \S+: gh-review/);
});

after(async () => {
  await Promise.all([worker?.stop(), api?.stop(), githubTool?.stop()]);
  await t?.close();
  await stub?.close();
});

test('a run posts to GitHub through the tool server, while the worker and the API never hold the token', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const { key } = await createApiKey(t.p.db, 'acme');
  const res = await fetch(`${apiUrl}/v1/functions/gh-review/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ repo: 'acme/shop', pr: 7, body: 'Looks good to me.' }),
  });
  assert.equal(res.status, 202);
  const { id } = (await res.json()) as { id: string };
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal((run.output as { created: boolean }).created, true);
  // GitHub saw the tool server's token, and the comment carries the step's marker.
  const posts = stub.requests.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 1);
  assert.equal(posts[0].authorization, `Bearer ${GITHUB_TOKEN}`);
  assert.equal(stub.comments.get('acme/shop#7')?.[0].body, `Looks good to me.\n\n<!-- baton:${id}:0 -->`);

  const holds = (env: Map<string, string>) => [...env].filter(([k, v]) => /^GITHUB_TOKEN/.test(k) || v.includes(GITHUB_TOKEN)).map(([k]) => k);
  const workerEnv = environOf(worker.pid);
  const apiEnv = environOf(api.pid);
  const toolEnv = environOf(githubTool.pid);
  assert.deepEqual(holds(workerEnv), [], 'the worker has no GitHub credential');
  assert.deepEqual(holds(apiEnv), [], 'the API has no GitHub credential');
  assert.deepEqual(holds(toolEnv), ['GITHUB_TOKEN'], 'the tool server does');
  // The signing key is the worker's alone; the tool server verifies with the public key and cannot mint.
  assert.ok(workerEnv.has('BATON_TOOL_SIGNING_KEY'));
  assert.ok(!apiEnv.has('BATON_TOOL_SIGNING_KEY'));
  assert.ok(!toolEnv.has('BATON_TOOL_SIGNING_KEY'));
  assert.ok(toolEnv.has('BATON_TOOL_PUBLIC_KEY'));
  // And the tool server holds nothing of the platform: no database, no queue.
  assert.deepEqual([...toolEnv.keys()].filter((k) => /DATABASE|REDIS/.test(k)), []);
});
