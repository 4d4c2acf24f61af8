/**
 * Approval gates: a tool the agent lists in `approve` parks the run before the call
 * (`waiting`, holding no worker); GET /v1/runs/:id shows the pending call; the approval
 * signal runs it, or returns "rejected by a person: …" to the model; a timeout rejects.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import * as v from 'valibot';
import { toolCalls } from '../../schema/tables.ts';
import { defineAgent } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { scriptedReply } from '../helpers/agent-script.ts';
import type { LlmStub } from '../helpers/llm-stub.ts';
import { type TestPlatform, startTestPlatform, trigger, waitFor, waitForRun } from '../helpers/platform.ts';

const gated = (name: string, approvalTimeoutMs?: number) =>
  defineAgent({
    name,
    input: v.object({ task: v.string() }),
    tools: { review: ['post_comment'] },
    agent: { instructions: 'Post the review.', prompt: (i) => i.task, approve: ['review.post_comment'], approvalTimeoutMs },
  });

const post = (pr: number) => [{ toolCalls: [{ name: 'review_post_comment', arguments: { repo: 'acme/shop', pr, body: 'LGTM' } }] }, 'Finished.'];

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(gated('gated'), gated('gated-timeout', 300)),
    llm: { reply: scriptedReply({ p11: post(11), p12: post(12), p13: post(13), p14: post(14) }) },
  });
});
after(() => t?.close());

const request = (path: string, body?: unknown) =>
  t.api.request(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
/** The tool result the model got back for its call, from its next request. */
const resultSeen = (task: string) => {
  const calls = (t.llm as LlmStub).calls.filter((c) => JSON.stringify(c.messages).includes(task));
  return [...(t.llm as LlmStub).toolResults(calls[1]).values()][0];
};
const posted = async (pr: number) => (await t.tools?.reviews.list({ repo: 'acme/shop', pr })) ?? [];

test('granted: the run parks before the call, shows it, and runs it once approved', async () => {
  const id = await trigger(t.api, 'gated', { task: 'script:p11' });
  const waiting = await waitForRun(t.p, id, ['waiting']);
  assert.equal(waiting.run.leaseOwner, null, 'a waiting run holds no lease');
  // The step's slot frees once its commit is acknowledged, a moment after the run is `waiting`.
  await waitFor(() => t.worker?.active === 0, 'the worker holds no step of the waiting run');
  assert.equal((await posted(11)).length, 0, 'nothing posted yet');
  const view = (await (await request(`/v1/runs/${id}`)).json()) as { status: string; waitingFor: string; pending: unknown };
  assert.equal(view.status, 'waiting');
  assert.equal(view.waitingFor, 'approval');
  assert.deepEqual(view.pending, {
    kind: 'approval',
    tool: 'review.post_comment',
    args: { repo: 'acme/shop', pr: 11, body: 'LGTM' },
    toolCallId: 'call_1_0',
    timeoutMs: null,
  });

  // The event stream says it too: run.waiting carries the pending call.
  const events = await t.api.request(`/v1/runs/${id}/events`);
  const reader = (events.body as ReadableStream<Uint8Array>).getReader();
  let seen = '';
  while (!seen.includes('event: run.waiting')) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  await reader.cancel();
  const waitingEvent = /event: run\.waiting\ndata: (.*)\n/.exec(seen)?.[1];
  assert.deepEqual((JSON.parse(waitingEvent ?? '{}') as { pending: unknown }).pending, view.pending);

  const bad = await request(`/v1/runs/${id}/signals/approval`, { approve: 'yes' });
  assert.equal(bad.status, 400);
  const problem = (await bad.json()) as { error: { message: string } };
  assert.match(problem.error.message, /^body\.approve: must be true or false/);
  assert.equal((await waitForRun(t.p, id, ['waiting'])).run.status, 'waiting', 'a malformed answer decides nothing');

  assert.equal((await request(`/v1/runs/${id}/signals/approval`, { approve: true })).status, 202);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(steps.map((s) => [s.name, s.kind]), [['model', 'llm'], ['tool', 'wait'], ['tool', 'tool'], ['model', 'llm']]);
  assert.equal((await posted(11)).length, 1);
  assert.match(resultSeen('script:p11'), /"created":true/);
  const audit = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(asc(toolCalls.seq));
  assert.deepEqual(audit.map((a) => [a.seq, a.tool, a.decision, a.outcome]), [[2, 'post_comment', 'allowed', 'ok']]);
});

test('rejected: the model is told "rejected by a person: <note>"; the tool is never called', async () => {
  const id = await trigger(t.api, 'gated', { task: 'script:p12' });
  await waitForRun(t.p, id, ['waiting']);
  assert.equal((await request(`/v1/runs/${id}/signals/approval`, { approve: false, note: 'too harsh' })).status, 202);
  const { run } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.match(resultSeen('script:p12'), /^\{"error":"rejected by a person: too harsh"\}$/, 'an error result, as the provider sends one');
  assert.equal((await posted(12)).length, 0);
  assert.equal((await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id))).length, 0, 'no call went out');
});

test('timed out: nobody answered, so the call is rejected', async () => {
  const id = await trigger(t.api, 'gated-timeout', { task: 'script:p13' });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.match(resultSeen('script:p13'), /rejected: nobody approved the call within 300 ms/);
  assert.equal((await posted(13)).length, 0);
  assert.deepEqual(steps.map((s) => s.kind), ['llm', 'wait', 'compute', 'llm']);
});
