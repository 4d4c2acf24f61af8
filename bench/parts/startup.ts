/**
 * Part 8, start-up: `baton worker` and `baton api` from process start (spawn) to ready
 * (the worker's "baton worker …" line, printed once it reads its streams; the API's
 * "listening" line), median of 10 each, alternated. This plus pod scheduling is the
 * latency of scaling from zero.
 */
import { spawnBaton } from '../../test/helpers/processes.ts';
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { startStack, stopProcess } from '../lib/stack.ts';
import { median, nowMs, percentile } from '../lib/stats.ts';

async function timeToReady(verb: 'worker' | 'api', env: Record<string, string>): Promise<number> {
  const t0 = nowMs();
  const p = spawnBaton(verb, env, `bench-${verb}`);
  try {
    await p.waitForLine(verb === 'worker' ? /^baton worker / : /baton api listening on /, 30_000);
    return nowMs() - t0;
  } finally {
    await stopProcess(p);
  }
}

export const startupPart: Part = {
  name: 'startup',
  about: '`baton worker` and `baton api`: process start to ready, median of 10',
  async run(ctx) {
    const stack = await startStack({ api: false, workers: 0 });
    const times = { worker: [] as number[], api: [] as number[] };
    try {
      const n = ctx.quick ? 1 : 10;
      if (!ctx.quick) await timeToReady('worker', stack.env); // warm the file-system cache
      for (let i = 0; i < n; i++) {
        times.worker.push(await timeToReady('worker', stack.env));
        times.api.push(await timeToReady('api', stack.env));
      }
    } finally {
      await stack.close();
    }
    const figure = (verb: 'worker' | 'api'): Figure => ({
      part: 'startup',
      label: `baton ${verb}: process start → ready`,
      value: median(times[verb]),
      unit: 'ms',
      vsFloor: 'time',
      note: `${times[verb].length} starts, max ${Math.round(percentile(times[verb], 100))} ms`,
    });
    return [figure('worker'), figure('api')];
  },
};
