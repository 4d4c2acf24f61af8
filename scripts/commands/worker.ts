/**
 * `baton worker [FUNCTION...]`: runs steps from the queue. On SIGTERM it stops taking
 * messages, gives in-flight steps BATON_GRACE_MS to finish, releases the rest, exits 0.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../runtime/config.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { untilSignal } from '../lib/serve.ts';

export async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, allowPositionals: true, options: {} });
  // Listen first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopSignal = untilSignal();
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) {
    throw new Error('DATABASE_URL and REDIS_URL must be set (the embedded mode is `baton dev`, i.e. `npm start`)');
  }
  const functions = await loadFunctions(config.functionsDir, positionals.length ? positionals : undefined);
  const p = await createPlatform(config, { functions });
  const worker = createWorker(p);
  await worker.start();
  console.error(`baton worker ${worker.consumer}: ${[...functions.keys()].join(', ')} (concurrency ${config.concurrency})`);
  await stopSignal;
  await worker.stop();
  await p.close();
  return 0;
}
