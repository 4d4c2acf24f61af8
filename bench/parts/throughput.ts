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
    const warmUps = { one: [] as number[], two: [] as number[] };
    try {
      // Warm-ups, as in the overhead part: the processes run the burst's path as servers that have
      // been up a while do (V8 optimises code once it has run many times). After a burst of 50 runs, the first measured
      // round ran at 2,660 steps/s and the next two at 3,908 and 4,126 (19:41 run); and each round
      // of two workers started its second worker fresh. Their rates are printed beside the figures.
      if (!ctx.quick) warmUps.one.push((await burst(stack, runs)).stepsPerSec);
      for (let round = 0; round < ctx.rounds; round++) {
        one.push(await burst(stack, runs));
        const second = await stack.addWorker();
        if (!ctx.quick) warmUps.two.push((await burst(stack, runs)).stepsPerSec);
        two.push(await burst(stack, runs));
        await stack.stopWorker(second);
      }
    } finally {
      await stack.close();
    }
    const med = (bs: Burst[], f: (b: Burst) => number) => median(bs.map(f));
    const warm = (rates: number[]) => (rates.length ? `; warm-ups: ${rates.map(Math.round).join(', ')}` : '');
    const spread = (bs: Burst[], warmUp: number[]) => `rounds: ${bs.map((b) => Math.round(b.stepsPerSec)).join(', ')}${warm(warmUp)}`;
    const figures: Figure[] = [
      { part: 'throughput', label: `${runs} runs × ${STEPS} steps at once, 1 worker process`, value: med(one, (b) => b.stepsPerSec), unit: 'steps/s', vsFloor: 'rate', note: spread(one, warmUps.one) },
      { part: 'throughput', label: `${runs} runs × ${STEPS} steps at once, 2 worker processes`, value: med(two, (b) => b.stepsPerSec), unit: 'steps/s', vsFloor: 'rate', note: spread(two, warmUps.two) },
      { part: 'throughput', label: 'under load (1 worker): claim → commit of a no-op step', value: med(one, (b) => median(b.inStep)), unit: 'ms', vsFloor: 'time' },
      { part: 'throughput', label: 'under load (1 worker): commit → next claim', value: med(one, (b) => median(b.handOn)), unit: 'ms', vsFloor: 'time' },
    ];
    return figures;
  },
};
