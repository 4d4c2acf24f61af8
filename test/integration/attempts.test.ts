/**
 * Every attempt is a row (`step_attempts`), written by the claim and by the commit or
 * failure record; `steps` shows the latest attempt, and a step that succeeded carries
 * no stale error. Failed attempts keep their token usage; POST /retry never erases a
 * failure; the event stream replays `step.failed` for every failed attempt; the
 * README's queries read all of it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq, sql } from 'drizzle-orm';
import * as v from 'valibot';
import { stepAttempts } from '../../schema/tables.ts';
import { query } from '../../runtime/db/connect.ts';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { documentedSql } from '../helpers/docs.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

let healed = false;
const agent = defineAgent({
  name: 'wobbly',
  input: v.object({ failUntil: v.number() }),
  start: 'prepare',
  steps: {
    prepare: () => next('think'),
    think: {
      maxAttempts: 3,
      run: async (ctx) => {
        // The model is called (and billed) before the step fails.
        const { text } = await ctx.llm.generateText({ prompt: `attempt ${ctx.attempt}` });
        if (ctx.attempt < ctx.input.failUntil && !healed) throw new Error(`could not parse the answer of attempt ${ctx.attempt}`);
        return done({ text, attempt: ctx.attempt });
      },
    },
  },
});

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: registryOf(agent), tools: false });
});
after(() => t.close());

const attemptsOf = (runId: string) =>
  t.p.db.select().from(stepAttempts).where(eq(stepAttempts.runId, runId)).orderBy(asc(stepAttempts.seq), asc(stepAttempts.attempt));

test('every attempt is a row; the step row shows the latest, with no stale error', async () => {
  const id = await trigger(t.api, 'wobbly', { failUntil: 3 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  const think = steps[1];
  assert.deepEqual([think.name, think.status, think.attempt, think.error], ['think', 'succeeded', 3, null]);
  assert.deepEqual([think.model, think.inputTokens, think.outputTokens], ['stub-model', 11, 7], 'the latest attempt');

  const attempts = await attemptsOf(id);
  assert.deepEqual(
    attempts.map((a) => [a.seq, a.attempt, a.status, (a.error as { code?: string } | null)?.code ?? null]),
    [
      [0, 1, 'succeeded', null],
      [1, 1, 'failed', 'step_error'],
      [1, 2, 'failed', 'step_error'],
      [1, 3, 'succeeded', null],
    ],
  );
  for (const a of attempts) {
    assert.equal(a.worker, t.worker?.consumer);
    assert.ok(a.finishedAt && a.finishedAt >= a.startedAt && typeof a.durationMs === 'number', `attempt ${a.seq}/${a.attempt} is timed`);
  }
  assert.match((attempts[1].error as { message: string }).message, /attempt 1/);
  // Failed attempts keep what they cost.
  assert.deepEqual(attempts.filter((a) => a.seq === 1).map((a) => [a.model, a.inputTokens, a.outputTokens]), [
    ['stub-model', 11, 7],
    ['stub-model', 11, 7],
    ['stub-model', 11, 7],
  ]);

  // GET /v1/runs/:id shows them too.
  const view = (await (await t.api.request(`/v1/runs/${id}`)).json()) as { steps: Array<{ attempts: Array<{ attempt: number; status: string }> }> };
  assert.deepEqual(view.steps[1].attempts.map((a) => [a.attempt, a.status]), [[1, 'failed'], [2, 'failed'], [3, 'succeeded']]);

  // The README's token query and the run summary count every billed call, failed attempts included.
  const usage = await query<{ function: string; llm_steps: string; llm_calls: string; input_tokens: string; output_tokens: string }>(
    t.p.db,
    sql.raw(documentedSql('README.md', 'Tokens per function and model')),
  );
  const row = usage.find((r) => r.function === 'wobbly');
  assert.deepEqual([row?.llm_steps, row?.llm_calls, row?.input_tokens, row?.output_tokens].map(Number), [1, 3, 33, 21]);
  const [summary] = await query<{ attempts: number; input_tokens: string; output_tokens: string }>(
    t.p.db,
    sql`select attempts, input_tokens, output_tokens from run_summary where id = ${id}`,
  );
  assert.deepEqual([summary.attempts, Number(summary.input_tokens), Number(summary.output_tokens)], [4, 33, 21]);
});

test('POST /retry never erases a failure, and the event stream replays every failed attempt', async () => {
  healed = false;
  const id = await trigger(t.api, 'wobbly', { failUntil: 99 });
  const failed = await waitForRun(t.p, id);
  assert.equal(failed.run.status, 'failed');
  const firstError = failed.run.error as { code: string; attempt: number };
  assert.deepEqual([firstError.code, firstError.attempt], ['step_error', 3]);

  healed = true;
  assert.equal((await t.api.request(`/v1/runs/${id}/retry`, { method: 'POST' })).status, 202);
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.output, { text: 'stub answer: attempt 4', attempt: 4 }, 'the retry continues the attempt count');
  assert.deepEqual([steps[1].status, steps[1].attempt, steps[1].error], ['succeeded', 4, null]);
  const attempts = (await attemptsOf(id)).filter((a) => a.seq === 1);
  assert.deepEqual(attempts.map((a) => [a.attempt, a.status]), [[1, 'failed'], [2, 'failed'], [3, 'failed'], [4, 'succeeded']]);
  assert.deepEqual(attempts[2].error, { ...(failed.steps[1].error as object) }, 'the error that failed the run is still there');

  // The README's query shows the attempts of the step that failed.
  const rows = await query<{ run_id: string; seq: number; attempt: number; status: string }>(
    t.p.db,
    sql.raw(documentedSql('README.md', 'Attempts of a step')),
  );
  assert.deepEqual(rows.map((r) => [r.run_id, r.seq, r.attempt, r.status]), [
    [id, 1, 1, 'failed'],
    [id, 1, 2, 'failed'],
    [id, 1, 3, 'failed'],
    [id, 1, 4, 'succeeded'],
  ]);

  // A client that connects late sees the whole history.
  const text = await (await t.api.request(`/v1/runs/${id}/events`)).text();
  const frames = text.split('\n\n').filter((f) => /^data:/m.test(f)).map((f) => ({
    event: /^event: (.*)$/m.exec(f)?.[1],
    id: /^id: (.*)$/m.exec(f)?.[1],
    data: JSON.parse(/^data: (.*)$/m.exec(f)?.[1] ?? 'null') as { name?: string; attempt?: number; error?: { message: string } },
  }));
  const events = frames.filter((f) => f.event !== 'step.delta').map((f) => `${f.event} ${f.id}`);
  assert.deepEqual(events, [
    'step.started 0-1-0',
    'step.completed 0-1-1',
    'step.started 1-1-0',
    'step.failed 1-1-1',
    'step.started 1-2-0',
    'step.failed 1-2-1',
    'step.started 1-3-0',
    'step.failed 1-3-1',
    'step.started 1-4-0',
    'step.completed 1-4-1',
    'run.finished end',
  ]);
  const data = frames.find((f) => f.id === '1-2-1')?.data;
  assert.deepEqual([data?.name, data?.attempt], ['think', 2]);
  assert.match(data?.error?.message ?? '', /attempt 2/);
});
