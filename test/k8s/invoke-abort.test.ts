/**
 * Knative mode: when the request that runs a step goes away (the dispatcher timed out,
 * or its pod stopped), the dispatcher will send the step again. The function must then
 * stop its step (release the lease, hand the step back) instead of finishing it while
 * the step is dispatched again. A real function app over real HTTP, real PostgreSQL
 * and Redis; the HTTP request is aborted by the client mid-step.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type Platform, createPlatform } from '../../runtime/platform.ts';
import { type Served, serveApp } from '../../scripts/lib/serve.ts';
import { REDIS_URL, type ScratchDatabase, dropPrefix, scratchDatabase, testPrefix, until } from './support.ts';

const TOKEN = 'abort-test-invoke-token-0123456789';
let release: () => void = () => {};
let started = 0;
let finishedBodies = 0;

const agent = defineAgent({
  name: 'slow',
  input: v.object({}),
  start: 'call',
  steps: {
    // Like an LLM call that ignores its AbortSignal: only the gate ends it.
    call: async () => {
      started++;
      await new Promise<void>((resolve) => (release = resolve));
      finishedBodies++;
      return next('end', { called: true });
    },
    end: async () => done({ ok: true }),
  },
});

let db: ScratchDatabase;
let p: Platform;
let served: Served;
const prefix = testPrefix();

before(async () => {
  db = await scratchDatabase();
  const config = loadConfig({ DATABASE_URL: db.runtimeUrl, REDIS_URL, BATON_REDIS_PREFIX: prefix, BATON_AUTH: 'off', BATON_LOG_LEVEL: 'silent', BATON_LEASE_MS: '2000', BATON_INVOKE_TOKEN: TOKEN });
  p = await createPlatform(config, { functions: registryOf(agent) });
  served = await serveApp(createInvokeApp(p, { worker: 'fn-pod' }), 0, '127.0.0.1');
});

after(async () => {
  release();
  await served?.close(100);
  await p?.close();
  await db?.drop();
  await dropPrefix(prefix);
});

async function run(id: string) {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query<{ next_seq: number; lease_owner: string | null; status: string }>('select next_seq, lease_owner, status from runs where id = $1', [id]);
    const steps = await c.query<{ seq: number }>("select seq from steps where run_id = $1 and status = 'succeeded'", [id]);
    return { ...r.rows[0], committed: steps.rows.length };
  } finally {
    await c.end();
  }
}

const invoke = (id: string, seq: number, signal?: AbortSignal) =>
  fetch(`${served.url}/invoke`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ run_id: id, seq }), signal });

test('an aborted invoke request stops its step: lease released, step handed back, its late result discarded', async () => {
  const res = await createApi(p).request('/v1/functions/slow/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const { id } = (await res.json()) as { id: string };
  const depthBefore = (await p.queue.depth(['slow']))[0];

  const caller = new AbortController();
  const first = invoke(id, 0, caller.signal).catch((err: Error) => err);
  await until(() => started === 1, { what: 'the step to start' }).done;
  assert.ok((await run(id)).lease_owner, 'the step holds the lease');
  caller.abort(); // the dispatcher gives up on this request
  assert.ok((await first) instanceof Error);

  // Stopped, not finished: the lease is released (an expiry would leave lease_owner set; heartbeats would renew it), nothing committed.
  await until(async () => (await run(id)).lease_owner === null, { what: 'the lease to be released' }).done;
  const depthAfter = (await p.queue.depth(['slow']))[0];
  assert.equal(depthAfter.lag, (depthBefore.lag ?? 0) + 1, 'the step is handed back to the queue');

  release(); // the abandoned body finally returns: its result must not land
  await until(() => finishedBodies === 1, { what: 'the abandoned body to return' }).done;
  assert.deepEqual({ ...(await run(id)), lease_owner: null }, { next_seq: 0, lease_owner: null, status: 'running', committed: 0 });

  // The step dispatched again runs normally.
  const again = invoke(id, 0);
  await until(() => started === 2, { what: 'the step to run again' }).done;
  release();
  const body = (await (await again).json()) as { outcome: { status: string; nextSeq: number } };
  assert.deepEqual(body.outcome, { status: 'committed', result: 'next', nextSeq: 1 });
  assert.equal((await run(id)).committed, 1);
});
