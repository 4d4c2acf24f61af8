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
import { createInvokeApp } from '../../runtime/api/invoke-app.ts';
import { loadConfig } from '../../runtime/config.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { createPlatform } from '../../runtime/platform.ts';
import { preloadStepLibraries } from '../../runtime/worker/preload.ts';
import { createWorker } from '../../runtime/worker/worker.ts';
import { loadPrivateKey } from '../../tools/lib/capability.ts';
import { CliError, EXIT, intOption, parseCommand, usageError } from '../lib/cli.ts';
import { createDispatch, longestStepMs } from '../lib/dispatch.ts';
import { setHeapGrowth } from '../lib/heap-growth.ts';
import { serveMetrics } from '../lib/metrics-server.ts';
import { serveApp, untilSignal } from '../lib/serve.ts';
import { stepBudget } from '../lib/step-budget.ts';
import { liveToolUrls, signingKeyFor, toolProblems, warnLoudly } from '../lib/tool-setup.ts';

export const usage = 'usage: baton worker [FUNCTION...] [--serve | --dispatch URL [--pinned TEMPLATE] [--timeout-ms MS] | --housekeeping]';

export const help = `${usage}

Runs steps from the queue: every function in functions/ (BATON_FUNCTIONS_DIR), or
those named. Start as many as you like; KEDA scales them on queue depth in
Kubernetes. Besides steps, a worker reclaims messages of dead workers, promotes
delayed wake-ups (backoffs, wait timeouts) and sweeps runs whose wake-up was lost.

On SIGTERM or Ctrl-C it stops taking steps, lets those in flight finish for up to
BATON_GRACE_MS (25 s), then releases the rest to other workers and exits 0.

Tools: each tool server a function declared needs a URL (BATON_TOOL_<NAME>_URL, or
a \`baton tools\` running on this machine) and capability tokens need a signing key
(BATON_TOOL_SIGNING_KEY, or the pair \`baton keys signing\` made); a worker without
them says so when it starts.

Kubernetes roles (baton deploy renders them):
  --serve FUNCTION             serve FUNCTION's POST /invoke on PORT (a Knative Service; needs BATON_INVOKE_TOKEN)
  --dispatch URL               drain FUNCTION's stream, POSTing each step to URL
  --pinned TEMPLATE            with --dispatch: steps of a started run go to its revision's route ({tag})
  --timeout-ms MS              with --dispatch: how long a request waits (default: above Knative's
                               timeout for the function's longest step)
  --housekeeping               run no steps: only delayed wake-ups and the sweeper

Environment: DATABASE_URL, REDIS_URL (required); BATON_CONCURRENCY (1000), BATON_LEASE_MS,
BATON_GRACE_MS, BATON_HEAP_GROWTH_PERCENT (50), BATON_TOOL_<NAME>_URL, BATON_TOOL_SIGNING_KEY,
BATON_METRICS_PORT (9464), OPENAI_API_KEY, OPENAI_BASE_URL, BATON_MODEL (README "Configuration").`;

export async function main(argv: string[]): Promise<number> {
  // Listen first: a SIGTERM that arrives while starting must still stop cleanly.
  const stopSignal = untilSignal();
  const { values, positionals } = parseCommand(
    argv,
    {
      serve: { type: 'boolean' },
      dispatch: { type: 'string' },
      pinned: { type: 'string' },
      'timeout-ms': { type: 'string' },
      housekeeping: { type: 'boolean' },
    },
    usage,
  );
  const modes = [values.serve, values.dispatch !== undefined, values.housekeeping].filter(Boolean).length;
  if (modes > 1) throw usageError('--serve, --dispatch and --housekeeping exclude each other', usage);
  if ((values.pinned || values['timeout-ms']) && values.dispatch === undefined) throw usageError('--pinned and --timeout-ms go with --dispatch', usage);
  const timeoutMs = intOption(values['timeout-ms'], '--timeout-ms', usage);
  if (timeoutMs === 0) throw usageError('--timeout-ms takes a positive whole number of milliseconds', usage);
  if (values.dispatch !== undefined && positionals.length !== 1) throw usageError('--dispatch URL takes exactly one FUNCTION', usage);
  const config = loadConfig();
  if (!config.databaseUrl || !config.redisUrl) {
    throw new CliError('DATABASE_URL and REDIS_URL must be set (the embedded mode is `baton dev`, i.e. `npm start`)', EXIT.usage);
  }
  if ((values.serve || values.dispatch !== undefined) && !config.invokeToken) {
    // Fail closed: an unauthenticated /invoke lets anything in the cluster run any tenant's step.
    throw new CliError('BATON_INVOKE_TOKEN must be set for --serve and --dispatch: the secret dispatchers send to function pods (`baton deploy` creates it)', EXIT.usage);
  }
  const functions = await loadFunctions(config.functionsDir, positionals.length ? positionals : undefined);
  const runsSteps = !values.housekeeping && values.dispatch === undefined;
  if (runsSteps) setHeapGrowth(config.heapGrowthPercent);
  const key = runsSteps ? signingKeyFor(config) : null;
  const toolUrls = liveToolUrls(config);
  const p = await createPlatform(
    { ...config, toolUrls },
    { functions, ...(runsSteps ? { signingKey: key ? loadPrivateKey(key.pem) : null } : {}) },
  );
  try {
    const metrics = await serveMetrics(p.metrics, config, (line) => console.error(line));
    const metricsNote = metrics ? `, metrics ${metrics.url}` : '';
    if (runsSteps) warnLoudly('baton worker', toolProblems(functions, toolUrls, key !== null));

    if (values.serve) {
      const shutdown = new AbortController();
      const served = await serveApp(createInvokeApp(p, { worker: config.workerName, shutdown: shutdown.signal }), config.port, config.host);
      console.error(`baton worker --serve: ${[...functions.keys()].join(', ')} on ${served.url} (revision ${config.revision ?? 'unknown'}${metricsNote})`);
      preloadStepLibraries(p.model, functions);
      const signal = await stopSignal;
      console.error(`baton worker --serve: ${signal}: draining requests in flight, up to ${config.graceMs / 1000} s (again to exit at once)`);
      // In-flight requests finish within the grace period; then their steps are aborted and released.
      const timer = setTimeout(() => shutdown.abort(new Error('the function is shutting down')), config.graceMs);
      await served.close(config.graceMs + 5000);
      clearTimeout(timer);
      await metrics?.close();
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
        ? `baton worker ${worker.consumer}: housekeeping (delayed wake-ups, sweeper${metricsNote})`
        : `baton worker ${worker.consumer}: ${names} (concurrency ${config.concurrency}${values.dispatch !== undefined ? `, dispatching to ${values.dispatch}` : ''}${metricsNote})`,
    );
    // After the worker is ready: its first model and tool steps then find their SDKs loaded.
    if (runsSteps) preloadStepLibraries(p.model, functions);
    const signal = await stopSignal;
    console.error(
      `baton worker ${worker.consumer}: ${signal}: draining ${worker.active} step(s) in flight, up to ${config.graceMs / 1000} s; ` +
        'unfinished ones are then released to other workers (again to exit at once)',
    );
    await worker.stop();
    await metrics?.close();
    console.error(`baton worker ${worker.consumer}: stopped`);
    return 0;
  } finally {
    await p.close();
  }
}
