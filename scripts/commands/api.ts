/** `baton api`: the HTTP API on PORT, against DATABASE_URL and REDIS_URL. Drains on SIGTERM. */
import { createApi } from '../../runtime/api/app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';

export async function main(): Promise<number> {
  // Listen first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopSignal = untilSignal();
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error('DATABASE_URL is not set (the embedded mode is `baton dev`, i.e. `npm start`)');
  const p = await createPlatform(config);
  if (!config.auth) p.log.warn('BATON_AUTH=off: the API accepts requests without an API key');
  const served = await serveApp(createApi(p), config.port, config.host);
  p.log.info({ url: served.url, functions: [...p.functions.keys()] }, 'api listening');
  console.error(`baton api listening on ${served.url}`);
  await stopSignal;
  await served.close();
  await p.close();
  return 0;
}
