/**
 * `baton worker [FUNCTION...]`: runs steps from the queue. On SIGTERM it stops taking
 * messages, gives in-flight steps BATON_GRACE_MS to finish, releases the rest, exits 0.
 *
 * The same verb has three more shapes, one per Kubernetes role (`baton deploy`):
 *   --serve FUNCTION            serve the function's invoke app on PORT (a Knative Service)
 *   --dispatch URL [--pinned T] drain FUNCTION's stream and POST each step to URL; with
 *     [--timeout-ms MS]         --pinned, steps of a started run go to its revision's route;
 *                               a request waits MS (default: above Knative's timeout for
 *                               the function, scripts/lib/step-budget.ts)
 *   --housekeeping              no steps: promote delayed wake-ups and sweep stale runs,
 *                               so backoffs and timeouts fire while the workers are at zero
 */
import { parseArgs } from 'node:util';
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { createDispatch, longestStepMs } from '../lib/dispatch.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';
import { stepBudget } from '../lib/step-budget.ts';

export async function main(argv: string[]): Promise<number> {
  // Listen first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopSignal = untilSignal();
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      serve: { type: 'boolean' },
      dispatch: { type: 'string' },
      pinned: { type: 'string' },
      'timeout-ms': { type: 'string' },
      housekeeping: { type: 'boolean' },
    },
  });
  const modes = [values.serve, values.dispatch !== undefined, values.housekeeping].filter(Boolean).length;
  if (modes > 1) throw new Error('--serve, --dispatch and --housekeeping exclude each other');
  if ((values.pinned || values['timeout-ms']) && values.dispatch === undefined) throw new Error('--pinned and --timeout-ms go with --dispatch');
  const timeoutMs = values['timeout-ms'] === undefined ? undefined : Number(values['timeout-ms']);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw new Error('--timeout-ms takes a positive whole number of milliseconds');
  if (values.dispatch !== undefined && positionals.length !== 1) throw new Error('--dispatch URL takes exactly one FUNCTION');
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) {
    throw new Error('DATABASE_URL and REDIS_URL must be set (the embedded mode is `baton dev`, i.e. `npm start`)');
  }
  const functions = await loadFunctions(config.functionsDir, positionals.length ? positionals : undefined);
  const p = await createPlatform(config, { functions });

  if (values.serve) {
    const shutdown = new AbortController();
    const served = await serveApp(createInvokeApp(p, { worker: config.workerName, shutdown: shutdown.signal }), config.port, config.host);
    console.error(`baton worker --serve: ${[...functions.keys()].join(', ')} on ${served.url} (revision ${config.revision ?? 'unknown'})`);
    await stopSignal;
    // In-flight requests finish within the grace period; then their steps are aborted and released.
    const timer = setTimeout(() => shutdown.abort(new Error('the function is shutting down')), config.graceMs);
    await served.close(config.graceMs + 5000);
    clearTimeout(timer);
    await p.close();
    return 0;
  }

  const fn = positionals[0];
  const worker = values.housekeeping
    ? createWorker(p, { functions: [] })
    : values.dispatch !== undefined
      ? createWorker(p, {
          execute: createDispatch(p, {
            url: values.dispatch,
            pinned: values.pinned,
            timeoutMs: timeoutMs ?? stepBudget(longestStepMs(p, fn)).dispatchTimeoutS * 1000,
          }),
        })
      : createWorker(p);
  await worker.start();
  // "baton worker <consumer>: <functions> (…)" — scripts and tests wait for this line.
  const names = [...functions.keys()].join(', ');
  console.error(
    values.housekeeping
      ? `baton worker ${worker.consumer}: housekeeping (delayed wake-ups, sweeper)`
      : `baton worker ${worker.consumer}: ${names} (concurrency ${config.concurrency}${values.dispatch !== undefined ? `, dispatching to ${values.dispatch}` : ''})`,
  );
  await stopSignal;
  await worker.stop();
  await p.close();
  return 0;
}
