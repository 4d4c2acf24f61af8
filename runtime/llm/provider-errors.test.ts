import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APICallError } from '@ai-sdk/provider';
import { BatonError } from '../errors.ts';
import { isRetryableStatus, llmError, retryAfterMs } from './provider-errors.ts';

const apiError = (statusCode: number | undefined, responseHeaders?: Record<string, string>) =>
  new APICallError({ message: 'provider said no', url: 'http://model/v1/chat/completions', requestBodyValues: {}, statusCode, responseHeaders });

test('429, 408, 409 and 5xx are retryable; other 4xx are not', () => {
  for (const s of [408, 409, 429, 500, 502, 503, 529]) assert.equal(isRetryableStatus(s), true, String(s));
  for (const s of [400, 401, 403, 404, 422]) assert.equal(isRetryableStatus(s), false, String(s));
});

test('Retry-After: milliseconds, seconds or an HTTP date', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');
  assert.equal(retryAfterMs({ 'retry-after-ms': '1500' }, now), 1500);
  assert.equal(retryAfterMs({ 'Retry-After': '3' }, now), 3000);
  assert.equal(retryAfterMs({ 'retry-after': 'Sat, 28 Nov 2026 12:00:07 GMT' }, now), 7000);
  assert.equal(retryAfterMs({ 'retry-after-ms': '250', 'retry-after': '9' }, now), 250, 'the precise header wins');
  assert.equal(retryAfterMs({ 'retry-after': 'Sat, 28 Nov 2026 11:00:00 GMT' }, now), 0, 'a date in the past: at once');
  assert.equal(retryAfterMs({ 'retry-after': 'soon' }, now), undefined);
  assert.equal(retryAfterMs(undefined, now), undefined);
});

test('a provider error becomes an llm_error saying whether to retry and when', () => {
  const limited = llmError(apiError(429, { 'retry-after': '2' })) as BatonError;
  assert.ok(limited instanceof BatonError);
  assert.deepEqual([limited.code, limited.retryable, limited.retryAfterMs], ['llm_error', true, 2000]);
  assert.deepEqual(limited.details, { status: 429, retryAfterMs: 2000 });
  const denied = llmError(apiError(401)) as BatonError;
  assert.deepEqual([denied.code, denied.retryable, denied.retryAfterMs], ['llm_error', false, undefined]);
  const unreachable = llmError(apiError(undefined)) as BatonError;
  assert.equal(unreachable.retryable, true, 'no answer at all (network): retry');
  const overloaded = llmError(apiError(503, { 'retry-after': '5' })) as BatonError;
  assert.equal(overloaded.retryAfterMs, 5000, 'a 503 may say when to come back too');
  const failing = llmError(apiError(500, { 'retry-after': '5' })) as BatonError;
  assert.deepEqual([failing.retryable, failing.retryAfterMs], [true, undefined], 'other statuses: the jittered backoff');
  const other = new Error('not from the SDK');
  assert.equal(llmError(other), other);
});
