import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costUsd, parsePrices, priceOf } from './prices.ts';

test('built-in prices, a dated model id falls back to its family, the offline model is free', () => {
  const table = parsePrices(undefined);
  assert.deepEqual(priceOf(table, 'gpt-4o-mini'), { input: 0.15, output: 0.6 });
  assert.deepEqual(priceOf(table, 'gpt-4o-mini-2024-07-18'), { input: 0.15, output: 0.6 });
  assert.equal(costUsd(table, 'baton-offline', 1000, 1000), 0);
  assert.equal(costUsd(table, 'gpt-4o-mini', 1_000_000, 1_000_000), 0.75);
  assert.equal(costUsd(table, 'some-local-model', 10, 10), null, 'unknown, not zero');
});

test('BATON_PRICES overrides and extends the table, as objects or pairs; a bad entry names its model', () => {
  const table = parsePrices('{"gpt-4o-mini":{"input":1,"output":2},"local":[0,0]}');
  assert.deepEqual(priceOf(table, 'gpt-4o-mini'), { input: 1, output: 2 });
  assert.equal(costUsd(table, 'local', 5, 5), 0);
  assert.throws(() => parsePrices('{"m": 1}'), /"m" must be/);
  assert.throws(() => parsePrices('{"m": {"input": -1, "output": 1}}'), /"m" must be/);
  assert.throws(() => parsePrices('cheap'), /must be JSON/);
});
