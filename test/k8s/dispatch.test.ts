/**
 * The dispatcher (knative mode) over real HTTP: it drains the function's stream and
 * POSTs each step to the URLs `baton deploy` renders. Two invoke apps stand in for two
 * Knative revisions of one function; a deploy happens while a run is mid-flight, and
 * the run's later steps must still go to the revision that ran its first step, while
 * runs started after the deploy go to the new one.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type Platform, createPlatform } from '../../runtime/platform.ts';
import { getRunWithSteps } from '../../runtime/store/runs.ts';
import { type Worker, createWorker } from '../../runtime/worker/worker.ts';
import { parseConfig } from '../../scripts/deploy/config.ts';
import { names } from '../../scripts/deploy/names.ts';
import { createDispatch } from '../../scripts/lib/dispatch.ts';
import { revisionTag } from '../../scripts/lib/revision-tag.ts';
import { type Served, serveApp } from '../../scripts/lib/serve.ts';
import { REDIS_URL, type ScratchDatabase, dropPrefix, scratchDatabase, testPrefix, until } from './support.ts';

const OLD = 'probe-0ld00000';
const NEW = 'probe-new11111';

let release: () => void = () => {};
let inFirstStep = false;
const gate = new Promise<void>((resolve) => (release = resolve));

const agent = defineAgent({
  name: 'probe',
  input: v.object({ hold: v.boolean() }),
  start: 'a',
  steps: {
    a: async (ctx) => {
      inFirstStep = true;
      if (ctx.input.hold) await gate;
      return next('b');
    },
    b: async () => done({ ok: true }),
  },
});

const n = names(parseConfig({ namespace: 'ns', image: 'img' }));
let db: ScratchDatabase;
const prefix = testPrefix();
const platforms: Platform[] = [];
const servers: Served[] = [];
let dispatcher: Worker;
let latest = OLD;
const served: Record<string, string> = {};
const requests: string[] = [];

async function platform(extra: Record<string, string>): Promise<Platform> {
  const config = loadConfig({ DATABASE_URL: db.runtimeUrl, REDIS_URL, BATON_REDIS_PREFIX: prefix, BATON_AUTH: 'off', BATON_LOG_LEVEL: 'silent', BATON_INVOKE_TOKEN: 'dispatch-test-invoke-token-0123456789', ...extra });
  const p = await createPlatform(config, { functions: registryOf(agent) });
  platforms.push(p);
  return p;
}

before(async () => {
  db = await scratchDatabase();
  for (const revision of [OLD, NEW]) {
    const p = await platform({ K_REVISION: revision, BATON_WORKER_NAME: revision });
    const s = await serveApp(createInvokeApp(p, { worker: revision }), 0, '127.0.0.1');
    servers.push(s);
    served[revision] = s.url;
  }
  // Routes as Knative would: the main host to the latest revision, `r-<hash>-probe` to that revision.
  const route: typeof fetch = (input, init) => {
    const url = new URL(String(input));
    requests.push(url.hostname);
    const tagged = [OLD, NEW].find((r) => url.hostname.startsWith(`${revisionTag(r)}-`));
    const target = tagged ?? (url.hostname === new URL(n.functionUrl('probe')).hostname ? latest : null);
    if (!target) return Promise.reject(new Error(`no route for ${url.hostname}`));
    return fetch(`${served[target]}${url.pathname}`, init);
  };
  const p = await platform({});
  dispatcher = createWorker(p, { execute: createDispatch(p, { url: n.functionUrl('probe'), pinned: n.functionPinnedUrl('probe'), timeoutMs: 10_000, fetch: route }) });
  await dispatcher.start();
});

after(async () => {
  release();
  await dispatcher?.stop(2000);
  for (const s of servers) await s.close(100);
  for (const p of platforms) await p.close();
  await db?.drop();
  await dropPrefix(prefix);
});

async function start(hold: boolean): Promise<string> {
  const res = await createApi(platforms[0]).request('/v1/functions/probe/runs', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ hold }),
  });
  assert.equal(res.status, 202);
  return ((await res.json()) as { id: string }).id;
}

async function finished(id: string) {
  await until(async () => (await getRunWithSteps(platforms[0].db, id))?.run.status === 'succeeded', { what: `run ${id}` }).done;
  const r = (await getRunWithSteps(platforms[0].db, id))!;
  return { revision: r.run.revision, workers: r.steps.map((s) => s.worker) };
}

test('a run started before a deploy finishes on its revision; a run started after it uses the new one', async () => {
  const pinnedRun = await start(true);
  await until(() => inFirstStep, { what: 'the first step to start' }).done;
  latest = NEW; // the deploy: the main route now serves the new revision
  release();
  assert.deepEqual(await finished(pinnedRun), { revision: OLD, workers: [OLD, OLD] });
  assert.ok(requests.some((h) => h.startsWith(`${revisionTag(OLD)}-probe.ns.svc.`)), 'the second step went to the tagged route');

  const freshRun = await start(false);
  assert.deepEqual(await finished(freshRun), { revision: NEW, workers: [NEW, NEW] });
});
