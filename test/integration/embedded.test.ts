/**
 * The embedded default in-process: PGlite on disk, the in-process queue and bus, the
 * offline model. Same engine, same statements as on PostgreSQL + Redis.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { openDatabase, type Database } from '../../runtime/db/connect.ts';
import { migrate } from '../../runtime/db/migrate.ts';
import { defineAgent, done, next, wait } from '../../runtime/define.ts';
import { loadFunctions, registryOf } from '../../runtime/functions.ts';
import { createPlatform, type Platform } from '../../runtime/platform.ts';
import { createWorker, type Worker } from '../../runtime/worker/worker.ts';
import { generateKeyPair, loadPrivateKey } from '../../tools/lib/capability.ts';
import { type LocalTools, startLocalTools } from '../../scripts/lib/embedded.ts';
import { trigger, waitForRun } from '../helpers/platform.ts';

const approval = defineAgent({
  name: 'approval',
  input: v.object({ failTimes: v.number() }),
  start: 'flaky',
  steps: {
    flaky: (ctx) => {
      if (ctx.attempt <= ctx.input.failTimes) throw new Error(`attempt ${ctx.attempt} fails`);
      return next('ask', { tries: ctx.attempt });
    },
    ask: (ctx) => (ctx.signal ? done({ approved: ctx.signal.payload, tries: ctx.state.tries }) : wait('approve')),
  },
});

let dir: string;
let database: Database;
let p: Platform;
let worker: Worker;
let tools: LocalTools;
let api: ReturnType<typeof createApi>;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-embedded-'));
  const keys = generateKeyPair();
  tools = await startLocalTools(dir, keys.publicKeyPem);
  database = await openDatabase({ dataDir: path.join(dir, 'pgdata') });
  await migrate(database.db);
  const demo = await loadFunctions(path.resolve(import.meta.dirname, '../../functions'));
  const fixtures = await loadFunctions(path.resolve(import.meta.dirname, '../fixtures/functions'), ['fanout']);
  const config = loadConfig({ BATON_AUTH: 'off', BATON_LOG_LEVEL: 'error', BATON_RETRY_BASE_MS: '20' }, { toolUrls: tools.urls, dataDir: dir });
  p = await createPlatform(config, {
    database,
    allowMemoryQueue: true,
    signingKey: loadPrivateKey(keys.privateKeyPem),
    functions: registryOf(...demo.values(), approval, ...fixtures.values()),
  });
  worker = createWorker(p, { rebuildAtStart: true });
  await worker.start();
  api = createApi(p);
});
after(async () => {
  await worker.stop(1000);
  await p.close();
  await database.close();
  await tools.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the demo runs on PGlite with the in-process queue and the offline model', async () => {
  assert.equal(p.queue.kind, 'memory');
  assert.equal(p.model.id, 'baton-offline');
  const id = await trigger(api, 'pr-review', { repo: 'acme/shop', pr: 1 });
  const { run, steps } = await waitForRun(p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(steps.map((s) => s.kind), ['tool', 'llm', 'tool']);
  assert.match((run.output as { review: string }).review, /offline model baton-offline/);
});

test('retries wait on the in-process timer list; a waiting run resumes on its signal', async () => {
  const id = await trigger(api, 'approval', { failTimes: 2 });
  await waitForRun(p, id, ['waiting']);
  const res = await api.request(`/v1/runs/${id}/signals/approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ by: 'ops' }),
  });
  assert.equal(res.status, 202);
  const { run, steps, attempts } = await waitForRun(p, id);
  assert.deepEqual(run.output, { approved: { by: 'ops' }, tries: 3 });
  assert.deepEqual(steps.map((s) => [s.name, s.kind, s.attempt, s.error]), [
    ['flaky', 'compute', 3, null],
    ['ask', 'wait', 1, null],
    ['ask', 'compute', 1, null],
  ]);
  assert.deepEqual(
    attempts.filter((a) => a.seq === 0).map((a) => [a.attempt, a.status, (a.error as { message?: string } | null)?.message ?? null]),
    [[1, 'failed', 'attempt 1 fails'], [2, 'failed', 'attempt 2 fails'], [3, 'succeeded', null]],
    'every attempt is kept',
  );
});

test('a fan-out and its join run on PGlite and the in-process queue: branches side by side, a failed one seen by the join', async () => {
  const id = await trigger(api, 'fanout', { branches: 3, delayMs: 100, failBranch: 3, onBranchFailure: 'continue' });
  const { run, steps } = await waitForRun(p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(steps.map((s) => [s.seq, s.name, s.branch, s.status]), [
    [0, 'plan', null, 'succeeded'],
    [1, 'work', 1, 'succeeded'],
    [2, 'work', 2, 'succeeded'],
    [3, 'work', 3, 'failed'],
    [4, 'join', null, 'succeeded'],
  ]);
  const [b1, b2] = [steps[1], steps[2]];
  assert.ok(b1.startedAt < (b2.finishedAt as Date) && b2.startedAt < (b1.finishedAt as Date), 'the branches ran side by side in one process');
  const output = run.output as { branches: Array<{ index: number; ok: boolean }> };
  assert.deepEqual(output.branches.map((b) => [b.index, b.ok]), [[1, true], [2, true], [3, false]]);
});
