import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, formatSummary, pricesFrom, summarize, type RunView } from './summary.ts';

const run = (models: Array<string | null>): RunView => ({
  id: 'r',
  function: 'f',
  status: 'succeeded',
  output: null,
  error: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.500Z',
  steps: models.map((model, seq) => ({
    seq,
    name: `s${seq}`,
    kind: model ? 'llm' : 'tool',
    status: 'succeeded',
    attempt: seq === 0 ? 2 : 1,
    durationMs: 10,
    usage: model ? { model, inputTokens: 1000, outputTokens: 500 } : null,
  })),
});

test('the summary counts steps, attempts and tokens; cost only when every model is priced', () => {
  const prices = pricesFrom({ BATON_MODEL_PRICES: '{"gpt-4o-mini":[0.15,0.6]}' });
  const priced = summarize(run([null, 'gpt-4o-mini', 'gpt-4o-mini']), prices);
  assert.deepEqual(priced, { id: 'r', status: 'succeeded', steps: 3, attempts: 4, inputTokens: 2000, outputTokens: 1000, costUsd: (2000 * 0.15 + 1000 * 0.6) / 1e6, wallMs: 2500 });
  assert.equal(formatSummary(priced), 'run succeeded: 3 steps, 4 attempts, 2000 input + 1000 output tokens, cost $0.0009, 2.5 s');
  const unknown = summarize(run(['gpt-4o-mini', 'some-other-model']), prices);
  assert.equal(unknown.costUsd, null);
  assert.doesNotMatch(formatSummary(unknown), /cost/);
  assert.match(formatSummary(summarize(run(['baton-offline']), pricesFrom({}))), /cost \$0\.00/);
  assert.throws(() => pricesFrom({ BATON_MODEL_PRICES: '{"m": 1}' }), /"m" must be \[input, output\]/);
  assert.throws(() => pricesFrom({ BATON_MODEL_PRICES: 'cheap' }), /must be JSON/);
});

test('durations read as people say them', () => {
  assert.equal(formatDuration(42), '42 ms');
  assert.equal(formatDuration(1540), '1.5 s');
  assert.equal(formatDuration(125_000), '2 min 5 s');
});
