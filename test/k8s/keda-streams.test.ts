/**
 * The names in a rendered ScaledObject must be the ones the runtime writes and reads:
 * a typo there scales nothing, and only shows in a cluster. So: render, enqueue runs
 * through the runtime (API → Redis) against real Redis, and read `XINFO GROUPS` with
 * exactly the rendered `stream` and `consumerGroup`, as KEDA's redis-streams scaler
 * does: lag rises with the backlog (what wakes a Deployment from zero), pending rises
 * while steps run (what keeps it up), and both fall to 0 once drained.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import * as v from 'valibot';
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type Platform, createPlatform } from '../../runtime/platform.ts';
import { type Worker, createWorker } from '../../runtime/worker/worker.ts';
import { parseConfig } from '../../scripts/deploy/config.ts';
import { planDeploy } from '../../scripts/deploy/plan.ts';
import { allObjects, render } from '../../scripts/deploy/render.ts';
import { REDIS_URL, type ScratchDatabase, dropPrefix, scratchDatabase, testPrefix, until } from './support.ts';

const BACKLOG = 5;
const CONCURRENCY = 2;

let release: () => void = () => {};
let running = 0;
const gate = () => new Promise<void>((resolve) => (release = resolve));
let opened = gate();

const agent = defineAgent({
  name: 'keda-probe',
  input: v.object({ n: v.number() }),
  start: 'work',
  steps: {
    work: async () => {
      running++;
      await opened;
      return done({ ok: true });
    },
  },
});

let db: ScratchDatabase;
let p: Platform;
let worker: Worker | undefined;
let redis: ReturnType<typeof createClient>;
const prefix = testPrefix();

before(async () => {
  db = await scratchDatabase();
  const config = loadConfig({ DATABASE_URL: db.runtimeUrl, REDIS_URL, BATON_REDIS_PREFIX: prefix, BATON_AUTH: 'off', BATON_LOG_LEVEL: 'silent', BATON_LEASE_MS: '5000' });
  p = await createPlatform(config, { functions: registryOf(agent) });
  redis = createClient({ url: REDIS_URL });
  await redis.connect();
});

after(async () => {
  release();
  await worker?.stop(2000);
  await p?.close();
  await db?.drop();
  redis?.destroy();
  await dropPrefix(prefix);
});

for (const mode of ['knative', 'worker'] as const) {
  test(`${mode} mode: the ScaledObject's stream and group see the runtime's backlog and in-flight steps`, async () => {
    const deploy = parseConfig({ namespace: 'ns', image: 'img', mode, redisPrefix: prefix });
    const scaled = allObjects(render(planDeploy(deploy, registryOf(agent)))).find((o) => o.kind === 'ScaledObject');
    assert.ok(scaled);
    const triggers = (scaled.spec as { triggers: Array<{ metadata: Record<string, string> }> }).triggers;
    const lagTrigger = triggers.find((t) => t.metadata.lagCount)!;
    const pendingTrigger = triggers.find((t) => t.metadata.pendingEntriesCount)!;
    // Both triggers watch the same place.
    assert.equal(lagTrigger.metadata.stream, pendingTrigger.metadata.stream);
    assert.equal(lagTrigger.metadata.consumerGroup, pendingTrigger.metadata.consumerGroup);
    const { stream, consumerGroup } = lagTrigger.metadata;

    const group = async () => {
      const groups = (await redis.xInfoGroups(stream)) as Array<Record<string, unknown>>;
      const g = groups.find((x) => x.name === consumerGroup);
      assert.ok(g, `consumer group "${consumerGroup}" exists on "${stream}" (groups: ${groups.map((x) => x.name).join(', ')})`);
      return { lag: Number(g.lag), pending: Number(g.pending) };
    };

    // Enqueue through the runtime with no worker running: the backlog is lag.
    const api = createApi(p);
    for (let n = 0; n < BACKLOG; n++) {
      const res = await api.request('/v1/functions/keda-probe/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) });
      assert.equal(res.status, 202);
    }
    assert.deepEqual(await group(), { lag: BACKLOG, pending: 0 });

    // A worker takes CONCURRENCY steps, which block: lag falls by that, pending rises by it.
    running = 0;
    opened = gate();
    worker = createWorker(p, { concurrency: CONCURRENCY });
    await worker.start();
    await until(async () => running === CONCURRENCY, { what: 'steps to start' }).done;
    assert.deepEqual(await group(), { lag: BACKLOG - CONCURRENCY, pending: CONCURRENCY });

    // Released, everything drains: both fall to 0.
    release();
    await until(
      async () => {
        const g = await group();
        return g.lag === 0 && g.pending === 0 && running === BACKLOG;
      },
      { what: 'the stream to drain' },
    ).done;
    await worker.stop(2000);
    worker = undefined;
  });
}
