/**
 * The demo agent end to end in one process, on real PostgreSQL and Redis: git tool →
 * LLM (the real @ai-sdk/openai provider against the stub, streaming) → review tool.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { toolCalls } from '../../schema/tables.ts';
import { type TestPlatform, finalState, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ llm: { reply: () => 'LGTM: the change is small and tested.' } });
});
after(() => t.close());

test('a pr-review run goes fetch_diff → review → post and succeeds', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 7 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.kind, s.status, s.attempt]),
    [
      [0, 'fetch_diff', 'tool', 'succeeded', 1],
      [1, 'review', 'llm', 'succeeded', 1],
      [2, 'post', 'tool', 'succeeded', 1],
    ],
  );
  const output = run.output as { review: string; commentId: number };
  assert.equal(output.review, 'LGTM: the change is small and tested.');
  assert.ok(output.commentId >= 1);

  // The LLM went over real HTTP through @ai-sdk/openai, streaming, with the diff in the prompt.
  assert.equal(t.llm?.calls.length, 1);
  assert.equal(t.llm?.calls[0].stream, true);
  assert.match(JSON.stringify(t.llm?.calls[0].messages), /diff --git|@@/);
  const review = steps[1];
  assert.equal(review.model, 'stub-model');
  assert.equal(review.inputTokens, 11);
  assert.equal(review.outputTokens, 7);

  // The final state (last snapshot + later patches) holds the whole conversation: every step's contribution.
  const state = (await finalState(t.p, id)) as { messages: Array<{ role: string }>; review: string };
  assert.deepEqual(state.messages.map((m) => m.role), ['user', 'assistant', 'tool']);
  assert.equal(state.review, output.review);

  // Both tool calls are audited, allowed, with an argument digest and no raw arguments.
  const calls = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(toolCalls.seq);
  assert.deepEqual(calls.map((c) => [c.seq, c.server, c.tool, c.decision, c.outcome]), [
    [0, 'git', 'get_diff', 'allowed', 'ok'],
    [2, 'review', 'post_comment', 'allowed', 'ok'],
  ]);
  assert.match(calls[0].argsDigest, /^sha256:[0-9a-f]{64}$/);
});
