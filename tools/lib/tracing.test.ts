import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { contextFromTraceparent, startTracing, traceparentOf, tracingConfigured, tracingOn } from './tracing.ts';

test('traces are on only with an OTLP endpoint, and OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none win', () => {
  assert.equal(tracingConfigured({}), false);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), false);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), true);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), true);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' }), false);
  assert.equal(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }), false);
});

test('off, startTracing loads nothing and spans are no-ops', async () => {
  assert.equal(await startTracing('test', {}), false);
  assert.equal(tracingOn(), false);
  assert.equal(traceparentOf(trace.getTracer('t').startSpan('x')), null);
  // In a fresh process: the runtime, the API and a tool server, loaded with tracing off, load only @opentelemetry/api.
  const probe = (env: Record<string, string>) => {
    const code = `
      import { registerHooks } from 'node:module';
      const seen = new Set();
      registerHooks({ resolve(specifier, context, next) {
        const r = next(specifier, context);
        const m = /\\/@opentelemetry\\/([^/]+)\\//.exec(r.url);
        if (m) seen.add(m[1]);
        return r;
      } });
      const { startTracing } = await import(${JSON.stringify(new URL('./tracing.ts', import.meta.url).href)});
      await import(${JSON.stringify(new URL('../../runtime/engine/execute-step.ts', import.meta.url).href)});
      await import(${JSON.stringify(new URL('../../runtime/api/app.ts', import.meta.url).href)});
      await import(${JSON.stringify(new URL('./server.ts', import.meta.url).href)});
      await startTracing('probe', ${JSON.stringify(env)});
      console.log(JSON.stringify([...seen].sort()));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout) as string[];
  };
  assert.deepEqual(probe({}), ['api']);
  // The probe can tell: with an endpoint, the SDK and the exporter are loaded.
  const on = probe({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
  assert.ok(on.includes('sdk-trace') && on.includes('exporter-trace-otlp-http'), on.join(','));
});

test('traceparent: parsed into a remote parent and formatted back', () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const ctx = contextFromTraceparent(tp);
  assert.ok(ctx);
  const sc = trace.getSpanContext(ctx);
  assert.deepEqual(sc, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
  assert.equal(traceparentOf(trace.wrapSpanContext(sc)), tp);
  assert.equal(trace.getSpanContext(contextFromTraceparent(tp.replace(/01$/, '00')) ?? ctx)?.traceFlags, 0, 'not sampled stays not sampled');
  // A later version may add fields; version 00 may not.
  assert.ok(contextFromTraceparent(`01${tp.slice(2)}-extra`));
  for (const bad of [
    '',
    'garbage',
    `${tp}-extra`,
    `ff${tp.slice(2)}`,
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
  ]) {
    assert.equal(contextFromTraceparent(bad), null, `"${bad}" is refused`);
  }
  assert.equal(contextFromTraceparent(null), null);
  assert.equal(contextFromTraceparent(undefined), null);
});
