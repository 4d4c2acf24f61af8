/**
 * The HTTP API's contract: 202 + Location + URLs, idempotency keys, the run view, and
 * every client mistake as a 4xx JSON error with its code (never a 500).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const greet = defineAgent({
  name: 'greet',
  input: v.object({ who: v.pipe(v.string(), v.minLength(1)), times: v.optional(v.number()) }),
  start: 'hello',
  steps: {
    hello: async (ctx) => next('bye', { greeting: (await ctx.llm.generateText({ prompt: `Greet ${ctx.input.who}` })).text }),
    bye: (ctx) => done({ said: ctx.state.greeting }),
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(greet), tools: false, llm: { reply: () => 'hello there' } });
});
after(() => t.close());

const post = (path: string, body: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  t.api.request(path, { method: 'POST', headers, body });

async function expectError(res: Response, status: number, code: string) {
  assert.equal(res.status, status, `status for ${code}`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string; details: unknown } };
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  assert.ok('details' in body.error);
  return body.error;
}

describe('POST /v1/functions/:name/runs', () => {
  test('answers 202 with the run id, Location and URLs, and the run completes', async () => {
    const res = await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Ada' }));
    assert.equal(res.status, 202);
    const body = (await res.json()) as { id: string; status: string; statusUrl: string; eventsUrl: string };
    assert.match(body.id, /^[0-9a-f-]{36}$/);
    assert.equal(body.status, 'queued');
    assert.equal(res.headers.get('location'), `/v1/runs/${body.id}`);
    assert.equal(body.statusUrl, `/v1/runs/${body.id}`);
    assert.equal(body.eventsUrl, `/v1/runs/${body.id}/events`);
    await waitForRun(t.p, body.id);

    const view = (await (await t.api.request(body.statusUrl)).json()) as Record<string, unknown> & { steps: Array<Record<string, unknown>> };
    assert.equal(view.id, body.id);
    assert.equal(view.function, 'greet');
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(view.input, { who: 'Ada' });
    assert.deepEqual(view.output, { said: 'hello there' });
    assert.equal(view.error, null);
    assert.ok(view.createdAt && view.finishedAt);
    assert.deepEqual(
      view.steps.map((s) => [s.seq, s.name, s.kind, s.status, s.attempt, typeof s.durationMs]),
      [
        [0, 'hello', 'llm', 'succeeded', 1, 'number'],
        [1, 'bye', 'compute', 'succeeded', 1, 'number'],
      ],
    );
  });

  test('an accepted run carries the same security and cache headers as every other API answer', async () => {
    const own = (res: Response) =>
      Object.fromEntries([...res.headers].filter(([k]) => !['content-type', 'content-length', 'location', 'idempotent-replayed', 'date', 'connection', 'keep-alive'].includes(k)));
    const accepted = await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Headers' }), { 'content-type': 'application/json', 'idempotency-key': 'headers-1' });
    assert.equal(accepted.status, 202);
    assert.equal(accepted.headers.get('content-type'), 'application/json');
    const replayed = await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Headers' }), { 'content-type': 'application/json', 'idempotency-key': 'headers-1' });
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
    const listed = await t.api.request('/v1/runs');
    assert.deepEqual(own(accepted), own(listed));
    assert.deepEqual(own(replayed), own(listed));
    assert.equal(accepted.headers.get('cache-control'), 'no-store');
    assert.equal(accepted.headers.get('x-frame-options'), 'DENY');
    assert.equal(accepted.headers.get('cross-origin-resource-policy'), 'same-origin');
    assert.equal(accepted.headers.get('x-content-type-options'), 'nosniff');
  });

  test('an Idempotency-Key returns the same run; a different input with it is a 409', async () => {
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'order-17' };
    const a = await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Bo' }), headers);
    const b = await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Bo' }), headers);
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    const [ida, idb] = [((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id];
    assert.equal(ida, idb);
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    await expectError(await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Cy' }), headers), 409, 'idempotency_key_conflict');
    await expectError(await post('/v1/functions/greet/runs', JSON.stringify({ who: 'Cy' }), { ...headers, 'idempotency-key': 'x'.repeat(300) }), 400, 'invalid_request');
  });

  test('client mistakes are 4xx JSON errors naming what is wrong', async () => {
    await expectError(await post('/v1/functions/nope/runs', '{}'), 404, 'function_not_found');
    await expectError(await post('/v1/functions/greet/runs', '{"who": '), 400, 'invalid_json');
    await expectError(await post('/v1/functions/greet/runs', ''), 400, 'invalid_json');
    const wrongType = await expectError(await post('/v1/functions/greet/runs', JSON.stringify({ who: 42 })), 400, 'invalid_input');
    assert.match(wrongType.message, /^input\.who: /);
    const missing = await expectError(await post('/v1/functions/greet/runs', JSON.stringify({})), 400, 'invalid_input');
    assert.match(missing.message, /input\.who/);
    assert.deepEqual((missing.details as { issues: Array<{ path: string }> }).issues.map((i) => i.path), ['input.who']);
    await expectError(await post('/v1/functions/greet/runs', JSON.stringify([1, 2])), 400, 'invalid_input');
    await expectError(await post('/v1/functions/greet/runs', 'who=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    const huge = JSON.stringify({ who: 'x'.repeat(1024 * 1024 + 10) });
    await expectError(await post('/v1/functions/greet/runs', huge), 413, 'payload_too_large');
    await expectError(await t.api.request('/v1/functions/greet/runs', { method: 'GET' }), 405, 'method_not_allowed');
    await expectError(await t.api.request('/v1/nothing-here'), 404, 'route_not_found');
  });
});

describe('runs', () => {
  test('a malformed run id is a 400, an unknown one a 404, on every route', async () => {
    const unknown = '01900000-0000-7000-8000-000000000000';
    for (const [method, suffix] of [
      ['GET', ''],
      ['GET', '/events'],
      ['POST', '/cancel'],
      ['POST', '/retry'],
      ['POST', '/replay'],
      ['POST', '/signals/approve'],
    ] as const) {
      await expectError(await t.api.request(`/v1/runs/not-a-uuid${suffix}`, { method }), 400, 'invalid_run_id');
      await expectError(await t.api.request(`/v1/runs/${unknown}${suffix}`, { method }), 404, 'run_not_found');
    }
  });

  test('cancel, retry and signal say when the run is not in a state for them', async () => {
    const id = await trigger(t.api, 'greet', { who: 'Di' });
    await waitForRun(t.p, id);
    await expectError(await t.api.request(`/v1/runs/${id}/cancel`, { method: 'POST' }), 409, 'run_finished');
    await expectError(await t.api.request(`/v1/runs/${id}/retry`, { method: 'POST' }), 409, 'run_not_failed');
    await expectError(await post(`/v1/runs/${id}/signals/approve`, '{}'), 409, 'run_finished');
    await expectError(await post(`/v1/runs/${id}/signals/bad%20name`, '{}'), 400, 'invalid_request');
    await expectError(await post(`/v1/runs/${id}/replay`, JSON.stringify({ fromSeq: 'two' })), 400, 'invalid_request');
    await expectError(await post(`/v1/runs/${id}/replay`, JSON.stringify({ fromSeq: 9 })), 400, 'invalid_request');
  });

  test('replay from a step keeps the earlier steps and runs the rest again', async () => {
    const id = await trigger(t.api, 'greet', { who: 'Ed' });
    await waitForRun(t.p, id);
    const res = await post(`/v1/runs/${id}/replay`, JSON.stringify({ fromSeq: 1 }));
    assert.equal(res.status, 202);
    const replay = (await res.json()) as { id: string; replayOf: string };
    assert.equal(replay.replayOf, id);
    const { run, steps } = await waitForRun(t.p, replay.id);
    assert.equal(run.status, 'succeeded');
    assert.deepEqual(run.output, { said: 'hello there' });
    assert.deepEqual(steps.map((s) => s.name), ['hello', 'bye']);
    const calls = t.llm?.calls.length;
    const whole = (await (await post(`/v1/runs/${id}/replay`, undefined, {})).json()) as { id: string };
    await waitForRun(t.p, whole.id);
    assert.equal(t.llm?.calls.length, (calls ?? 0) + 1, 'a whole replay calls the model again');
  });

  test('GET /v1/runs lists runs, newest first, filtered', async () => {
    const id = await trigger(t.api, 'greet', { who: 'Flo' });
    await waitForRun(t.p, id);
    const res = await t.api.request('/v1/runs?function=greet&status=succeeded&limit=2');
    assert.equal(res.status, 200);
    const { runs } = (await res.json()) as { runs: Array<{ id: string; status: string }> };
    assert.equal(runs.length, 2);
    assert.equal(runs[0].id, id);
    assert.ok(runs.every((r) => r.status === 'succeeded'));
    await expectError(await t.api.request('/v1/runs?status=sleeping'), 400, 'invalid_request');
    await expectError(await t.api.request('/v1/runs?limit=0'), 400, 'invalid_request');
  });
});

describe('operations', () => {
  test('healthz, readyz, metrics (counted here, served on the metrics port) and the functions list', async () => {
    assert.equal((await t.api.request('/healthz')).status, 200);
    const ready = await t.api.request('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true, database: 'ok', queue: 'ok' });
    const metrics = await t.p.metrics.registry.metrics();
    assert.match(metrics, /baton_runs_created_total\{function="greet"\} \d+/);
    assert.match(metrics, /baton_queue_lag_messages\{function="greet"\}/);
    const fns = (await (await t.api.request('/v1/functions')).json()) as { functions: Array<{ name: string; inputSchema: { required: string[] } }> };
    assert.equal(fns.functions[0].name, 'greet');
    assert.deepEqual(fns.functions[0].inputSchema.required, ['who']);
    const res = await t.api.request('/v1/functions');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  });
});

describe('GET /ui with BATON_AUTH=off', () => {
  test('the run inspector needs no sign-in and lists the runs', async () => {
    const id = await trigger(t.api, 'greet', { who: 'Ui' });
    const res = await t.api.request('/ui');
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.ok(page.includes(`/ui/runs/${id}`));
    assert.doesNotMatch(page, /Sign out|csrf-token/);
    assert.equal((await t.api.request(`/ui/runs/${id}`)).status, 200);
  });
});
