/**
 * Prometheus metrics (GET /metrics). One registry per platform, so several platforms
 * in one process (tests) do not collide; queue depth is read at scrape time.
 */
import client from 'prom-client';
import type { Queue } from './queue/queue.ts';

export interface Metrics {
  registry: client.Registry;
  runsCreated: client.Counter<'function'>;
  steps: client.Counter<'function' | 'kind' | 'outcome'>;
  stepSeconds: client.Histogram<'function' | 'kind'>;
  tokens: client.Counter<'function' | 'model' | 'direction'>;
  httpRequests: client.Counter<'method' | 'route' | 'status'>;
}

export function createMetrics(opts: { queue: Queue; functions: () => readonly string[] }): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'baton_process_' });
  const lag = new client.Gauge({
    name: 'baton_queue_lag',
    help: 'Step messages published and not yet picked up, per function',
    labelNames: ['function'],
    registers: [registry],
    async collect() {
      for (const d of await opts.queue.depth(opts.functions()).catch(() => [])) {
        lag.set({ function: d.function }, d.lag ?? 0);
        pending.set({ function: d.function }, d.pending);
      }
    },
  });
  const pending = new client.Gauge({
    name: 'baton_queue_pending',
    help: 'Step messages delivered and not yet acknowledged (steps in flight), per function',
    labelNames: ['function'],
    registers: [registry],
  });
  return {
    registry,
    runsCreated: new client.Counter({ name: 'baton_runs_created_total', help: 'Runs accepted', labelNames: ['function'], registers: [registry] }),
    steps: new client.Counter({
      name: 'baton_steps_total',
      help: 'Step executions by outcome (committed, retrying, failed, fenced, cancelled, skipped)',
      labelNames: ['function', 'kind', 'outcome'],
      registers: [registry],
    }),
    stepSeconds: new client.Histogram({
      name: 'baton_step_duration_seconds',
      help: 'Step body duration (the LLM or tool call), seconds',
      labelNames: ['function', 'kind'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    tokens: new client.Counter({
      name: 'baton_llm_tokens_total',
      help: 'LLM tokens by direction (input, output)',
      labelNames: ['function', 'model', 'direction'],
      registers: [registry],
    }),
    httpRequests: new client.Counter({
      name: 'baton_http_requests_total',
      help: 'API requests',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
  };
}
