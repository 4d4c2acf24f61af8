import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callFailure } from './gateway.ts';

test('a refusal is final, but our own token expiring in transit is retried with a fresh one', () => {
  const expired = callFailure('git.get_diff', 401, 'Streamable HTTP error: {"error":{"code":-32001,"message":"token expired"}}');
  assert.equal(expired.code, 'tool_unavailable');
  assert.equal(expired.retryable, true);
  for (const [status, message] of [[401, 'bad signature'], [403, 'token_args_mismatch: the arguments differ']] as const) {
    const refused = callFailure('git.get_diff', status, message);
    assert.equal(refused.code, 'tool_denied');
    assert.equal(refused.retryable, false);
  }
  assert.equal(callFailure('git.get_diff', undefined, 'ECONNREFUSED').code, 'tool_unavailable');
});
