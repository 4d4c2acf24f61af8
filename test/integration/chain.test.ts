/**
 * functions/chain, the benchmark function: `{ "steps": N }` runs N no-op steps, one
 * committed step row each, and finishes with the count; a bad N is a 400 naming the field.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { exampleInput, loadFunctions } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const FUNCTIONS = path.resolve(import.meta.dirname, '../../functions');

let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({ functions: await loadFunctions(FUNCTIONS, ['chain']), tools: false, llm: 'offline' });
});
after(() => t.close());

test('the example input runs 10 steps, each committed once, and the run outputs the count', async () => {
  assert.deepEqual(exampleInput(FUNCTIONS, 'chain'), { steps: 10 });
  const id = await trigger(t.api, 'chain', exampleInput(FUNCTIONS, 'chain'));
  const { run, steps } = await waitForRun(t.p, id);
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.output, { steps: 10 });
  assert.deepEqual(
    steps.map((s) => [s.seq, s.name, s.kind, s.status, s.attempt]),
    Array.from({ length: 10 }, (_, seq) => [seq, 'step', 'compute', 'succeeded', 1]),
  );
});

test('one step is a run of one step', async () => {
  const { run, steps } = await waitForRun(t.p, await trigger(t.api, 'chain', { steps: 1 }));
  assert.deepEqual([run.status, run.output, steps.length], ['succeeded', { steps: 1 }, 1]);
});

test('a step count that is not a whole number from 1 to 10,000 is a 400 naming input.steps', async () => {
  for (const steps of [0, -1, 2.5, 10_001, '10', null]) {
    const res = await t.api.request('/v1/functions/chain/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ steps }),
    });
    assert.equal(res.status, 400, `steps: ${JSON.stringify(steps)}`);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_input');
    assert.match(body.error.message, /input\.steps/, body.error.message);
  }
});
