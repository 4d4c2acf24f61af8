/**
 * Traces in one process, with an in-memory exporter: a fan-out run (plan → three
 * branches → join) is one trace whose root the API made; every step and every branch
 * is a span under it, each branch naming its index. An agent run (pr-agent: the model
 * lists its tools, then calls them) leaves no span outside its trace, tool listings
 * and the tool servers' spans included. (Across processes, with a real OTLP receiver:
 * test/e2e/traces.test.ts.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { loadFunctions } from '../../runtime/functions.ts';
import { stopTracing, traceIds, useTracingProvider } from '../../tools/lib/tracing.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/functions');
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ idGenerator: traceIds, spanProcessors: [new SimpleSpanProcessor({ exporter })] });

let t: TestPlatform;
before(async () => {
  useTracingProvider(provider, { contextManager: new AsyncLocalStorageContextManager().enable(), propagator: new W3CTraceContextPropagator() });
  t = await startTestPlatform({ functions: await loadFunctions(FIXTURES, ['fanout']), llm: 'offline' });
});
after(async () => {
  await t.close();
  await stopTracing();
});

test('a fan-out run is one trace: plan, each branch (with its index) and the join under the API root', async () => {
  const id = await trigger(t.api, 'fanout', { branches: 3, delayMs: 20 });
  assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
  await provider.forceFlush();
  const traceId = id.replaceAll('-', '');
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const root = spans.find((s) => s.name === 'run fanout');
  assert.ok(root, 'the root span');
  assert.equal(root.parentSpanContext, undefined);
  const steps = spans.filter((s) => s.name.startsWith('step ')).sort((a, b) => Number(a.attributes['baton.seq']) - Number(b.attributes['baton.seq']));
  assert.deepEqual(
    steps.map((s) => [s.name, s.attributes['baton.seq'], s.attributes['baton.branch'] ?? null, s.attributes['baton.outcome']]),
    [
      ['step plan', 0, null, 'committed'],
      ['step work', 1, 1, 'committed'],
      ['step work', 2, 2, 'committed'],
      ['step work', 3, 3, 'committed'],
      ['step join', 4, null, 'committed'],
    ],
  );
  for (const s of steps) assert.equal(s.parentSpanContext?.spanId, root.spanContext().spanId, `${s.name} #${s.attributes['baton.seq']} is under the root`);
  // Nothing of this run landed in another trace.
  assert.equal(exporter.getFinishedSpans().filter((s) => s.attributes['baton.run_id'] === id && s.spanContext().traceId !== traceId).length, 0);
});

test("an agent run's every span is in its trace: model turns, tool listings, tool calls, the tool servers' spans", async () => {
  const agent = await startTestPlatform({ llm: 'offline' });
  try {
    exporter.reset();
    const input = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../functions/pr-agent/example.json'), 'utf8'));
    const id = await trigger(agent.api, 'pr-agent', input);
    assert.equal((await waitForRun(agent.p, id, undefined, 60_000)).run.status, 'succeeded');
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    const names = new Set(spans.map((s) => s.name));
    for (const name of ['run pr-agent', 'step model', 'chat baton-offline', 'tools/list', 'initialize']) assert.ok(names.has(name), `a ${name} span`);
    assert.ok([...names].some((n) => n.startsWith('tools/call ')), 'tool call spans');
    const stray = spans.filter((s) => s.spanContext().traceId !== id.replaceAll('-', ''));
    assert.deepEqual(stray.map((s) => s.name), [], 'no span outside the run trace');
    // The tool server's listing is under the model step that asked for it.
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    for (const list of spans.filter((s) => s.name === 'tools/list')) {
      assert.equal(byId.get(list.parentSpanContext?.spanId ?? '')?.name, 'step model');
    }
  } finally {
    await agent.close();
  }
});
