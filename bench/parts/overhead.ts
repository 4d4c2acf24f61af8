/**
 * Part 2, step overhead: one 10-step `chain` run alone through `baton api` and one
 * `baton worker` (default settings), repeated. A run's time is from just before its
 * POST to its last commit (`runs.finished_at`); per-step overhead = run time / 10.
 * The step rows also say where the time goes: claim to commit inside a step, and one
 * step's commit to the next step's claim (the hand-on through Redis).
 */
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { type Stack, startStack, stepTimings, submitRuns, waitForRuns } from '../lib/stack.ts';
import { median, nowMs } from '../lib/stats.ts';

const STEPS = 10;

export interface SingleRuns {
  perStepMs: number[];
  inStep: number[];
  handOn: number[];
}

/** `count` chain runs one after another on a running stack; per-step time of each. */
export async function singleRuns(stack: Pick<Stack, 'api' | 'db'>, count: number): Promise<SingleRuns> {
  if (!stack.api) throw new Error('the stack has no API');
  const perStepMs: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    const [id] = await submitRuns(stack.api.url, 'chain', { steps: STEPS }, 1);
    const end = await waitForRuns(stack.db, [id], 30_000, 2);
    perStepMs.push((end - t0) / STEPS);
    ids.push(id);
  }
  const t = await stepTimings(stack.db, ids);
  return { perStepMs, ...t };
}

export const overheadPart: Part = {
  name: 'overhead',
  about: 'one 10-step chain run alone (API + 1 worker, default settings), per-step time, median of ≥ 20',
  async run(ctx) {
    const stack = await startStack({ workers: 1 });
    try {
      await singleRuns(stack, ctx.quick ? 1 : 5); // warm up: JIT, connections, consumer groups
      const r = await singleRuns(stack, ctx.quick ? 2 : 25);
      const figures: Figure[] = [
        { part: 'overhead', label: 'per step, one 10-step run alone (POST → last commit) / 10', value: median(r.perStepMs), unit: 'ms', vsFloor: 'time', note: `${r.perStepMs.length} runs` },
        { part: 'overhead', label: 'inside a step: claim → commit (step rows)', value: median(r.inStep), unit: 'ms', vsFloor: 'time' },
        { part: 'overhead', label: 'between steps: commit → next claim (step rows)', value: median(r.handOn), unit: 'ms', vsFloor: 'time' },
      ];
      return figures;
    } finally {
      await stack.close();
    }
  },
};
