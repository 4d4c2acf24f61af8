/**
 * Cost: every LLM step is priced (built-in table, overridden by BATON_PRICES) into
 * `cost_usd` on the step and on each attempt; the API, `run_summary` and
 * `token_usage_by_function` show the totals, every attempt counted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { documentedSql } from '../helpers/docs.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

let t: TestPlatform;
before(async () => {
  // The stub answers 11 input + 7 output tokens per call; its first call fails with a 500.
  t = await startTestPlatform({
    llm: { reply: () => 'LGTM', failFirst: 1 },
    env: { BATON_PRICES: JSON.stringify({ 'stub-model': { input: 1, output: 2 } }) },
  });
});
after(() => t.close());

const PER_CALL = (11 * 1 + 7 * 2) / 1e6;

test('each LLM step carries its cost; the run, the API and the SQL views total it', async () => {
  const id = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 1 });
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const review = steps.find((s) => s.kind === 'llm');
  assert.equal(review?.costUsd, PER_CALL);
  assert.deepEqual(steps.filter((s) => s.kind !== 'llm').map((s) => s.costUsd), [null, null], 'tool steps cost nothing here');

  const res = await t.api.request(`/v1/runs/${id}`);
  const view = (await res.json()) as { usage: { inputTokens: number; outputTokens: number; costUsd: number; llmCalls: number }; steps: Array<{ usage: { costUsd: number } | null }> };
  assert.deepEqual(view.usage, { llmCalls: 1, inputTokens: 11, outputTokens: 7, costUsd: PER_CALL }, 'the 500 answered no usage');
  assert.equal(steps.find((s) => s.kind === 'llm')?.attempt, 2, 'the first attempt failed');
  assert.equal(view.steps[1].usage?.costUsd, PER_CALL);

  const [summary] = await query<{ cost_usd: string }>(t.p.db, sql`select cost_usd::text from run_summary where id = ${id}`);
  assert.equal(Number(summary.cost_usd), PER_CALL);
  const [perDay] = await query<{ function: string; cost_usd: string; day: string }>(
    t.p.db,
    sql`select function, cost_usd::text, day::text from token_usage_by_function where function = 'pr-review'`,
  );
  assert.equal(Number(perDay.cost_usd), PER_CALL);

  // The README's query answers the same.
  const documented = await t.p.db.execute(sql.raw(documentedSql('README.md', 'Cost per function per day')));
  const rows = (documented as unknown as { rows: Array<{ function: string; cost_usd: string; llm_calls: string }> }).rows;
  const row = rows.find((r) => r.function === 'pr-review');
  assert.equal(Number(row?.cost_usd), PER_CALL);
});

test('an unpriced model has no cost (NULL), not a made-up zero', async () => {
  const other = await startTestPlatform({ llm: { reply: () => 'ok' }, env: { BATON_MODEL: 'unpriced-model' } });
  try {
    const id = await trigger(other.api, 'pr-review', { repo: 'acme/shop', pr: 2 });
    const { run, steps } = await waitForRun(other.p, id);
    assert.equal(run.status, 'succeeded');
    assert.equal(steps[1].model, 'unpriced-model');
    assert.equal(steps[1].costUsd, null);
    const view = (await (await other.api.request(`/v1/runs/${id}`)).json()) as { usage: { costUsd: number | null } };
    assert.equal(view.usage.costUsd, null);
    const [summary] = await query<{ cost_usd: string | null }>(other.p.db, sql`select cost_usd::text from run_summary where id = ${id}`);
    assert.equal(summary.cost_usd, null);
  } finally {
    await other.close();
  }
});
