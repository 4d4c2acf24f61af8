import assert from 'node:assert/strict';
import { test } from 'node:test';
import { armFaultPoints, parseFaults } from './fault-points.ts';

test('BATON_FAULTS: probabilities, stop, and unknown names ignored', () => {
  const faults = parseFaults('after-commit=0.05, during-call=1,before-commit=stop,nonsense=1,claimed');
  assert.deepEqual(Object.fromEntries(faults), {
    'after-commit': { probability: 0.05, signal: 'SIGKILL' },
    'during-call': { probability: 1, signal: 'SIGKILL' },
    'before-commit': { probability: 1, signal: 'SIGSTOP' },
    claimed: { probability: 1, signal: 'SIGKILL' },
  });
  assert.equal(parseFaults(undefined).size, 0);
  assert.deepEqual(Object.fromEntries(parseFaults('after-call@join=1,after-last-branch=1,claimed@=1,nonsense@join=1')), {
    'after-call@join': { probability: 1, signal: 'SIGKILL' },
    'after-last-branch': { probability: 1, signal: 'SIGKILL' },
  });
  assert.equal(parseFaults('after-call=often').size, 0);
  assert.deepEqual(Object.fromEntries(parseFaults('claimed=#3,before-commit=#0')), { claimed: { probability: 1, signal: 'SIGKILL', nth: 3 } });
});

test('fault points arm only with the test flag, and either way the process is told to say so', () => {
  assert.equal(armFaultPoints(undefined, false), null);
  assert.equal(armFaultPoints('', true), null);
  assert.match(armFaultPoints('claimed=1', false) ?? '', /^WARNING: BATON_FAULTS .* ignored.*BATON_TEST_HOOKS=1/);
  assert.match(armFaultPoints('claimed=1,after-commit=stop', true) ?? '', /^WARNING: fault points ARMED \(claimed=1, after-commit=stop\)/);
  armFaultPoints(undefined, false);
});
