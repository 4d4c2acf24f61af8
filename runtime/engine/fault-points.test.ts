import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseFaults } from './fault-points.ts';

test('BATON_FAULTS: probabilities, stop, and unknown names ignored', () => {
  const faults = parseFaults('after-commit=0.05, during-call=1,before-commit=stop,nonsense=1,claimed');
  assert.deepEqual(Object.fromEntries(faults), {
    'after-commit': { probability: 0.05, signal: 'SIGKILL' },
    'during-call': { probability: 1, signal: 'SIGKILL' },
    'before-commit': { probability: 1, signal: 'SIGSTOP' },
    claimed: { probability: 1, signal: 'SIGKILL' },
  });
  assert.equal(parseFaults(undefined).size, 0);
  assert.equal(parseFaults('after-call=often').size, 0);
});
