/**
 * GET /v1/runs/:id/events: step started/completed events, token deltas of the
 * streaming LLM step, a final run event, and a gap-free resume with Last-Event-ID.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
}

/** Reads a whole SSE response (the stream ends after run.finished). */
async function readEvents(res: Response): Promise<SseEvent[]> {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((frame) => /^data:/m.test(frame))
    .map((frame) => ({
      id: /^id: ?(.*)$/m.exec(frame)?.[1],
      event: /^event: ?(.*)$/m.exec(frame)?.[1] ?? 'message',
      data: JSON.parse([...frame.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join('\n')) as Record<string, unknown>,
    }));
}

let t: TestPlatform;
before(async () => {
  // Slow enough that the stream is open while the steps run.
  t = await startTestPlatform({ llm: { delayMs: 150, reply: () => 'one two three four five six seven eight nine ten' } });
});
after(() => t.close());

test('the event stream follows a run live, then resumes after any event without a gap', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 3 });
  const live = await readEvents(await t.api.request(`/v1/runs/${id}/events`));
  const durable = live.filter((e) => e.id !== undefined);
  assert.deepEqual(
    durable.map((e) => `${e.event}:${e.data.seq ?? ''}`),
    [
      'step.started:0',
      'step.completed:0',
      'step.started:1',
      'step.completed:1',
      'step.started:2',
      'step.completed:2',
      'run.finished:',
    ],
  );
  const final = durable.at(-1) as SseEvent;
  assert.equal(final.data.status, 'succeeded');
  assert.equal((final.data.output as { review: string }).review, 'one two three four five six seven eight nine ten');
  const completed = durable.find((e) => e.event === 'step.completed' && e.data.seq === 1) as SseEvent;
  assert.equal(completed.data.kind, 'llm');
  assert.equal(typeof completed.data.durationMs, 'number');

  // Deltas of the streaming LLM step arrive live (no id: they are not replayed).
  const deltas = live.filter((e) => e.event === 'step.delta');
  assert.ok(deltas.length >= 1, 'token deltas were streamed');
  assert.equal(deltas.map((d) => d.data.text).join(''), 'one two three four five six seven eight nine ten');

  // Reconnecting after each event yields exactly the events that followed it.
  for (let i = 0; i < durable.length - 1; i++) {
    const resumed = await readEvents(await t.api.request(`/v1/runs/${id}/events`, { headers: { 'last-event-id': durable[i].id as string } }));
    assert.deepEqual(
      resumed.map((e) => e.id),
      durable.slice(i + 1).map((e) => e.id),
      `resume after ${durable[i].id}`,
    );
  }
  const afterEnd = await readEvents(await t.api.request(`/v1/runs/${id}/events`, { headers: { 'last-event-id': 'end' } }));
  assert.deepEqual(afterEnd.map((e) => e.event), ['run.finished']);
});

test('a stream opened on a finished run replays it and ends', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 4 });
  await waitForRun(t.p, id);
  const events = await readEvents(await t.api.request(`/v1/runs/${id}/events`));
  assert.equal(events.length, 7);
  assert.equal(events.at(-1)?.event, 'run.finished');
});
