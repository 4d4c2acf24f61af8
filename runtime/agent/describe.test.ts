import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizeStep } from './describe.ts';

const call = (toolName: string, input: unknown) => ({ type: 'tool-call', toolCallId: 'c', toolName, input });
const result = (toolName: string, output: unknown) => ({ role: 'tool', content: [{ type: 'tool-result', toolCallId: 'c', toolName, output }] });

test('a turn: the tools asked for, or the answer; a call: its tool and how it went', () => {
  assert.equal(
    summarizeStep({ messages: { $append: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: [call('git_get_diff', {}), call('git_get_diff', {}), call('git_x', {})] }] } }),
    'asks git_get_diff ×2, git_x',
  );
  assert.equal(summarizeStep({ messages: { $append: [{ role: 'assistant', content: [{ type: 'text', text: 'All\ngood.' }] }] } }), 'answers: All good.');
  assert.equal(summarizeStep({ messages: { $append: [result('git_get_diff', { type: 'json', value: {} })] } }), 'git_get_diff → ok');
  assert.equal(summarizeStep({ messages: { $append: [result('x_y', { type: 'error-text', value: 'rejected by a person: no' })] } }), 'x_y → error: rejected by a person: no');
  assert.equal(summarizeStep({}, result('git_get_diff', { type: 'json', value: {} })), 'git_get_diff → ok', "a branch's result is its output");
  const many = [1, 2, 3].map(() => result('git_get_diff', { type: 'json', value: {} }));
  assert.equal(summarizeStep({ messages: { $append: many } }), '3 results in call order: 3 ok');
  assert.equal(summarizeStep({ diff: 'x' }), null);
  assert.equal(summarizeStep({ messages: { $append: [{ role: 'assistant', content: 'a hand-wired review' }] } }), null, 'plain text is not a turn');
});
