/** `baton api`: the HTTP API on PORT, against DATABASE_URL and REDIS_URL. Drains on SIGTERM. */
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { CliError, EXIT, parseCommand } from '../lib/cli.ts';
import { serveMetrics } from '../lib/metrics-server.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';

export const usage = 'usage: baton api';

export const help = `${usage}

Serves the HTTP API (README "The API") on HOST:PORT, against PostgreSQL (DATABASE_URL)
and Redis (REDIS_URL). Run as many as you like behind a load balancer; they share
nothing but the database and Redis. Prometheus metrics are on BATON_METRICS_PORT.
On SIGTERM or Ctrl-C it stops accepting, lets open requests finish (event streams
are closed after 2 s; clients resume them with Last-Event-ID) and exits 0.

Environment: DATABASE_URL, REDIS_URL (required); PORT (8080), HOST (0.0.0.0),
BATON_AUTH, BATON_METRICS_PORT (9464), BATON_METRICS_HOST (127.0.0.1), BATON_LOG_LEVEL.`;

const STREAM_GRACE_MS = 2000;

export async function main(argv: string[]): Promise<number> {
  // Listen first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopSignal = untilSignal();
  parseCommand(argv, {}, usage, { max: 0 });
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) {
    throw new CliError('DATABASE_URL and REDIS_URL must be set (the embedded mode is `baton dev`, i.e. `npm start`)', EXIT.usage);
  }
  const p = await createPlatform(config);
  try {
    if (!config.auth) p.log.warn('BATON_AUTH=off: the API accepts requests without an API key');
    const metrics = await serveMetrics(p.metrics, config, (line) => console.error(line));
    const served = await serveApp(createApi(p), config.port, config.host);
    p.log.info({ url: served.url, functions: [...p.functions.keys()] }, 'api listening');
    console.error(`baton api listening on ${served.url}${metrics ? ` (metrics ${metrics.url})` : ''}`);
    const signal = await stopSignal;
    console.error(`baton api: ${signal}: stopping; open requests get up to ${STREAM_GRACE_MS / 1000} s (again to exit at once)`);
    await served.close(STREAM_GRACE_MS);
    await metrics?.close();
  } finally {
    await p.close();
  }
  return 0;
}
