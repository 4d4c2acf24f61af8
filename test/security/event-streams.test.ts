/**
 * Event streams cannot be left running by a client: a client that goes away at once
 * and a HEAD request both leave no stream polling the database and holding a
 * subscription for the rest of a (possibly days-long) run. Found by the API fuzz.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const holder = defineAgent({
  name: 'holder',
  input: v.object({}),
  start: 'hold',
  steps: { hold: (ctx) => (ctx.signal ? done(null) : wait('go')) },
});

let t: TestPlatform;
let active = 0;
let subscribed = 0;
/** Subscriptions asked for and not answered yet. */
let pending = 0;
let runId: string;

before(async () => {
  t = await startTestPlatform({ llm: 'offline', tools: false, functions: registryOf(holder) });
  // Count live subscriptions: one per open event stream.
  const subscribe = t.p.events.subscribe.bind(t.p.events);
  t.p.events.subscribe = async (id, listener) => {
    pending++;
    const unsubscribe = await subscribe(id, listener).finally(() => pending--);
    active++;
    subscribed++;
    return async () => {
      active--;
      await unsubscribe();
    };
  };
  runId = await trigger(t.api, 'holder', {});
  await waitForRun(t.p, runId, ['waiting']);
});
after(() => t.close());

test('a client that disconnects at once leaves no stream behind', async () => {
  for (let i = 0; i < 5; i++) {
    const res = await t.api.request(`/v1/runs/${runId}/events`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  }
  // Streams of one run share a subscription, made once Redis answers: wait for it to exist and end.
  // (and no subscription still on its way: one made late would count as the next test's).
  await waitFor(() => subscribed > 0 && active === 0 && pending === 0, 'every event stream to end');
});

test('HEAD on an event stream answers its headers and opens no stream', async () => {
  const before = subscribed;
  const res = await t.api.request(`/v1/runs/${runId}/events`, { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(subscribed + pending, before, 'no subscription made');
  assert.equal(active, 0);
});

test('a stream that is read ends with the run', async () => {
  const res = await t.api.request(`/v1/runs/${runId}/events`);
  await waitFor(() => active === 1, 'the stream to subscribe');
  assert.equal((await t.api.request(`/v1/runs/${runId}/signals/go`, { method: 'POST' })).status, 202);
  const text = await res.text();
  assert.match(text, /event: run.finished/);
  await waitFor(() => active === 0, 'the stream to unsubscribe');
});
