/**
 * Waiting for a person: a step returns wait(signal, { next, timeoutMs }); the run is
 * `waiting` and holds no worker and no lease; POST /v1/runs/:id/signals/:name resumes
 * it with the payload in the next step's context; the timeout resumes it with a marker.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, wait } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const agent = defineAgent({
  name: 'approval',
  input: v.object({ timeoutMs: v.optional(v.number()) }),
  start: 'ask',
  steps: {
    ask: (ctx) => wait('approve', { next: 'decide', timeoutMs: ctx.input.timeoutMs, patch: { asked: true } }),
    decide: (ctx) => done({ signal: ctx.signal ?? null, asked: ctx.state.asked }),
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(agent), tools: false, llm: 'offline' });
});
after(() => t.close());

const post = (path: string, body?: unknown) =>
  t.api.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

test('a signal resumes a waiting run with its payload in the next step', async () => {
  const id = await trigger(t.api, 'approval', {});
  const waiting = await waitForRun(t.p, id, ['waiting']);
  assert.equal(waiting.run.waitSignal, 'approve');
  assert.equal(waiting.run.leaseOwner, null, 'a waiting run holds no lease');
  assert.equal(t.worker?.active, 0, 'and no worker slot');
  assert.deepEqual(waiting.steps.map((s) => [s.name, s.kind, s.status]), [['ask', 'wait', 'succeeded']]);

  const wrong = await post(`/v1/runs/${id}/signals/reject`, { ok: false });
  assert.equal(wrong.status, 409);
  assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'run_not_waiting');

  const res = await post(`/v1/runs/${id}/signals/approve`, { ok: true, by: 'ana' });
  assert.equal(res.status, 202);
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: { ok: true, by: 'ana' }, timedOut: false }, asked: true });

  const late = await post(`/v1/runs/${id}/signals/approve`, { ok: true });
  assert.equal(late.status, 409, 'a signal to a finished run is refused');
});

test('the timeout resumes it with a timeout marker', async () => {
  const id = await trigger(t.api, 'approval', { timeoutMs: 300 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { signal: { name: 'approve', payload: null, timedOut: true }, asked: true });
  assert.deepEqual(steps.map((s) => s.name), ['ask', 'decide']);
});
