/**
 * A run's trace survives a crash: a worker process dies by its own hand in the middle
 * of the LLM step (fault point `during-call@review`), another worker reclaims the step
 * after the lease and finishes the run. The steps that worker ran are in the run's
 * trace, under the root the API made, like every other step: the trace context came
 * back with the reclaimed message and the run's row, not with the dead process.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { startTestPlatform, waitFor, waitForRun } from '../helpers/platform.ts';
import { ROOT, type BatonProcess, runAlone, spawnBaton, startApiProcess, stopAll, teardown } from '../helpers/processes.ts';

runAlone();

test('a step reclaimed after its worker died joins the run trace', { timeout: 120_000 }, async (tc) => {
  const defer = teardown(tc);
  const receiver = await startOtlpReceiver();
  defer(() => receiver.close());
  const t = await startTestPlatform({ worker: false });
  defer(() => t.close());
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
  const env = { ...t.env, ...otel, BATON_LEASE_MS: '1000' };
  const procs: BatonProcess[] = [];
  defer(() => stopAll(procs));

  const api = await startApiProcess(env);
  procs.push(api);
  const doomed = spawnBaton('worker', { ...env, BATON_FAULTS: 'during-call@review=1', BATON_TEST_HOOKS: '1' }, 'doomed');
  procs.push(doomed);
  await doomed.waitForLine(/^baton worker /, 30_000);

  const input = JSON.parse(fs.readFileSync(path.join(ROOT, 'functions/pr-review/example.json'), 'utf8'));
  const res = await fetch(`${api.url}/v1/functions/pr-review/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) });
  const runId = ((await res.json()) as { id: string }).id;
  const died = await doomed.exited;
  assert.equal(died.signal, 'SIGKILL', 'the worker died in the review step');

  const rescuer = spawnBaton('worker', env, 'rescuer');
  procs.push(rescuer);
  const done = await waitForRun(t.p, runId, undefined, 60_000);
  assert.equal(done.run.status, 'succeeded');
  const traceId = runId.replaceAll('-', '');
  await waitFor(
    () => receiver.spans.some((s) => s.traceId === traceId && s.name === 'step post'),
    'the post step span from the rescuing worker',
    20_000,
  );
  const spans = receiver.spans.filter((s) => s.traceId === traceId);
  const root = spans.find((s) => s.name === 'run pr-review');
  assert.ok(root, 'the root span');
  const rescued = spans.filter((s) => s.name.startsWith('step ') && String(s.attributes['baton.worker']).startsWith('rescuer'));
  assert.deepEqual(rescued.map((s) => s.name).sort(), ['step post', 'step review']);
  for (const s of rescued) assert.equal(s.parentSpanId, root.spanId, `${s.name} is under the run's root`);
  // Nothing of this run started a trace of its own.
  assert.equal(receiver.spans.filter((s) => s.attributes['baton.run_id'] === runId && s.traceId !== traceId).length, 0);
});
