/**
 * Prometheus metrics, served on their own port (BATON_METRICS_PORT; see
 * scripts/lib/metrics-server.ts). One registry per platform, so several platforms in
 * one process (tests) do not collide; queue figures are read at scrape time.
 *
 * Names follow Prometheus conventions: `baton_` then what is measured, the unit
 * (seconds, messages, …) and `_total` on counters. The process and Node.js metrics
 * keep their standard names (process_*, nodejs_*), so stock dashboards work.
 */
import client from 'prom-client';
import type { Queue, QueueDepth } from './queue/queue.ts';

export interface Metrics {
  registry: client.Registry;
  runsCreated: client.Counter<'function'>;
  steps: client.Counter<'function' | 'kind' | 'outcome'>;
  stepSeconds: client.Histogram<'function' | 'kind'>;
  tokens: client.Counter<'function' | 'model' | 'direction'>;
  httpRequests: client.Counter<'method' | 'route' | 'status'>;
  httpSeconds: client.Histogram<'method' | 'route'>;
  /** Messages taken over from a consumer that died (or stalled past a lease). */
  reclaims: client.Counter<'function'>;
  /** Live runs the sweeper re-published because their wake-up was lost. */
  sweeperRepairs: client.Counter<'function'>;
}

export function createMetrics(opts: { queue: Queue; functions: () => readonly string[] }): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  // One queue read per scrape, shared by the three gauges: prom-client collects them
  // concurrently, so a gauge cannot rely on another's collect having run first.
  let inFlight: Promise<QueueDepth[]> | null = null;
  const readDepth = () =>
    (inFlight ??= opts.queue
      .depth(opts.functions())
      .catch(() => [])
      .finally(() => {
        inFlight = null;
      }));
  const queueGauge = (name: string, help: string, value: (d: QueueDepth) => number) => {
    const gauge: client.Gauge<'function'> = new client.Gauge({
      name,
      help,
      labelNames: ['function'],
      registers: [registry],
      async collect() {
        for (const d of await readDepth()) gauge.set({ function: d.function }, value(d));
      },
    });
    return gauge;
  };
  queueGauge('baton_queue_lag_messages', 'Step messages published and not yet picked up, per function (KEDA lagCount)', (d) => d.lag ?? 0);
  queueGauge(
    'baton_queue_pending_messages',
    'Step messages delivered and not yet acknowledged (steps in flight), per function (KEDA pendingEntriesCount)',
    (d) => d.pending,
  );
  queueGauge('baton_queue_lag_seconds', 'Age of the oldest step message not yet picked up, per function (0 when none waits)', (d) => d.oldestMs / 1000);
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    new client.Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    registry,
    runsCreated: counter('baton_runs_created_total', 'Runs accepted (new runs and replays)', ['function']),
    steps: counter('baton_steps_total', 'Step executions by outcome (committed, retrying, failed, fenced, cancelled, released, skipped)', [
      'function',
      'kind',
      'outcome',
    ]),
    stepSeconds: new client.Histogram({
      name: 'baton_step_duration_seconds',
      help: 'Step body duration (the LLM or tool call), seconds',
      labelNames: ['function', 'kind'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    tokens: counter('baton_llm_tokens_total', 'LLM tokens by direction (input, output)', ['function', 'model', 'direction']),
    httpRequests: counter('baton_http_requests_total', 'API requests by route and status', ['method', 'route', 'status']),
    httpSeconds: new client.Histogram({
      name: 'baton_http_request_duration_seconds',
      help: 'API request duration until the response starts, seconds (an event stream counts until it opens)',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    reclaims: counter('baton_queue_reclaimed_messages_total', 'Step messages taken over from a consumer that died or stalled past a lease', ['function']),
    sweeperRepairs: counter('baton_sweeper_repaired_runs_total', 'Live runs the sweeper re-published because their wake-up was lost', ['function']),
  };
}
