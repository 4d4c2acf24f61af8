/**
 * Prometheus `/metrics` on its own port (BATON_METRICS_PORT, default 9464), bound to
 * BATON_METRICS_HOST (default 127.0.0.1): metrics say which functions exist, how busy
 * they are and which models they use, so they stay off the public API port, which
 * answers 404 there. Every long-running process serves them: api, worker (and its
 * dispatcher, function and housekeeping shapes), dev.
 *
 * On one machine several processes want the default port: the first gets it, the
 * others fall back to a free port and say which. A port set explicitly must be free.
 */
import { Hono } from 'hono';
import type { Config } from '../../runtime/config.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { serveApp, type Served } from './serve.ts';

export function metricsApp(metrics: Metrics): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });
  app.notFound((c) => c.text('metrics are at /metrics\n', 404));
  return app;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `/metrics`; null when BATON_METRICS_PORT=off. `note` receives a line for the operator. */
export async function serveMetrics(metrics: Metrics, config: Config, note: (line: string) => void): Promise<MetricsServer | null> {
  const { port, host, enabled, portGiven } = config.metrics;
  if (!enabled) return null;
  const app = metricsApp(metrics);
  let served: Served;
  try {
    served = await serveApp(app, port, host, { what: 'BATON_METRICS_PORT' });
  } catch (err) {
    if (portGiven || !/in use/.test((err as Error).message)) throw err;
    served = await serveApp(app, 0, host, { what: 'BATON_METRICS_PORT' });
    note(`metrics: port ${port} is taken (another Baton process?); this one serves ${served.url}/metrics (BATON_METRICS_PORT sets it)`);
  }
  return { url: `${served.url}/metrics`, close: () => served.close(500) };
}
