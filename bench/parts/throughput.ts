/**
 * Part 3, throughput: 500 `chain` runs × 10 steps POSTed at once through `baton api`,
 * run by one `baton worker` process, then by two (separate processes, default
 * settings). steps/s = 5,000 / (first POST → last commit). Rounds alternate the two
 * shapes; each figure is the median over rounds. The step rows under this load say
 * where the time goes, as in the overhead part.
 */
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { type Stack, startStack, stepTimings, submitRuns, waitForRuns } from '../lib/stack.ts';
import { median, nowMs } from '../lib/stats.ts';

const STEPS = 10;

export interface Burst {
  stepsPerSec: number;
  inStep: number[];
  handOn: number[];
}

/** POSTs `runs` chain runs at once and waits for all of them (bounded by `timeoutMs`). */
export async function burst(stack: Stack, runs: number, timeoutMs = 600_000): Promise<Burst> {
  if (!stack.api) throw new Error('the stack has no API');
  const t0 = nowMs();
  const ids = await submitRuns(stack.api.url, 'chain', { steps: STEPS }, runs);
  const end = await waitForRuns(stack.db, ids, timeoutMs, 50);
  const t = await stepTimings(stack.db, ids);
  return { stepsPerSec: (runs * STEPS) / ((end - t0) / 1000), ...t };
}

export const throughputPart: Part = {
  name: 'throughput',
  about: '500 chain runs × 10 steps POSTed at once; steps/s with 1 and 2 worker processes (default settings)',
  async run(ctx) {
    const runs = ctx.quick ? 20 : 500;
    const stack = await startStack({ workers: 1 });
    const one: Burst[] = [];
    const two: Burst[] = [];
    try {
      if (!ctx.quick) await burst(stack, 50); // warm up
      for (let round = 0; round < ctx.rounds; round++) {
        one.push(await burst(stack, runs));
        const second = await stack.addWorker();
        two.push(await burst(stack, runs));
        await stack.stopWorker(second);
      }
    } finally {
      await stack.close();
    }
    const med = (bs: Burst[], f: (b: Burst) => number) => median(bs.map(f));
    const spread = (bs: Burst[]) => `rounds: ${bs.map((b) => Math.round(b.stepsPerSec)).join(', ')}`;
    const figures: Figure[] = [
      { part: 'throughput', label: `${runs} runs × ${STEPS} steps at once, 1 worker process`, value: med(one, (b) => b.stepsPerSec), unit: 'steps/s', vsFloor: 'rate', note: spread(one) },
      { part: 'throughput', label: `${runs} runs × ${STEPS} steps at once, 2 worker processes`, value: med(two, (b) => b.stepsPerSec), unit: 'steps/s', vsFloor: 'rate', note: spread(two) },
      { part: 'throughput', label: 'under load (1 worker): claim → commit of a no-op step', value: med(one, (b) => median(b.inStep)), unit: 'ms', vsFloor: 'time' },
      { part: 'throughput', label: 'under load (1 worker): commit → next claim', value: med(one, (b) => median(b.handOn)), unit: 'ms', vsFloor: 'time' },
    ];
    return figures;
  },
};
