/**
 * Part 2, step overhead: one 10-step `chain` run alone through `baton api` and one
 * `baton worker` (default settings), repeated. A run's time is from just before its
 * POST to its last commit (`runs.finished_at`); per-step overhead = run time / 10.
 * The step rows also say where the time goes: claim to commit inside a step, one step's
 * commit to the next step's claim (the hand-on through Redis), and the run's first step (its
 * POST, the insert, the wake-up through Redis, the claim and the first commit) against each
 * later one (a commit that also claims the next step).
 *
 * The floor drifts on a shared machine (by 1.5x within one `npm run bench`), so this part also
 * measures it alongside: after each run, ten floor transitions on a lane of its own, and the
 * per-step time is also given as a ratio to that floor, measured in the same moments.
 */
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import type { Part } from '../lib/part.ts';
import type { Figure } from '../lib/report.ts';
import { type FloorLane, openFloorLane } from './floor.ts';
import { burst } from './throughput.ts';
import { type Stack, idArray, startStack, stepTimings, submitRuns, waitForRuns } from '../lib/stack.ts';
import { median, nowMs } from '../lib/stats.ts';

const STEPS = 10;

export interface SingleRuns {
  perStepMs: number[];
  inStep: number[];
  handOn: number[];
  /** The POST to the first step's commit, per run. */
  firstStepMs: number[];
  /** The first step's commit to the last one's, per later step. */
  laterStepMs: number[];
  /** Floor transitions measured between the runs (with a lane). */
  floorMs: number[];
}

/**
 * How often the bench looks whether the run has finished. The run's time comes from its rows
 * (`finished_at`), not from this poll; a poll every 2 ms woke a database backend and the bench
 * that often on a 2-core machine and slowed what it watched: a step's commit took 1.09–1.13 ms
 * in the worker with it, 0.90–0.97 ms with a poll every 50 ms.
 */
const POLL_MS = 25;

/**
 * Runs submitted at once before the measured runs, so the API and the worker run the step path
 * as a server that has been up a while does (V8 optimises code only once it has run many times;
 * the floor's few lines get there within its own warm-up). After five runs alone the path was
 * slower; measured on one stack, after five runs alone against after 3 × 200 runs at once: the first step
 * 8.98 / 9.43 → 7.60 / 7.03 ms, a later step 2.34 / 2.06 → 1.80 / 1.43 ms. The per-step time
 * before this warm-up is printed too.
 */
const WARM_UP_RUNS = 500;

/** Floor transitions after each run (interleaved with the runs, so both see the same machine). */
const FLOOR_PER_RUN = 10;

/** `count` chain runs one after another on a running stack; per-step time of each. */
export async function singleRuns(stack: Pick<Stack, 'api' | 'db'>, count: number, floor?: FloorLane): Promise<SingleRuns> {
  if (!stack.api) throw new Error('the stack has no API');
  const perStepMs: number[] = [];
  const floorMs: number[] = [];
  const ids: string[] = [];
  const started = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const t0 = nowMs();
    const [id] = await submitRuns(stack.api.url, 'chain', { steps: STEPS }, 1);
    const end = await waitForRuns(stack.db, [id], 30_000, POLL_MS);
    perStepMs.push((end - t0) / STEPS);
    ids.push(id);
    started.set(id, t0);
    for (let k = 0; floor && k < FLOOR_PER_RUN; k++) floorMs.push(await floor.transition());
  }
  const t = await stepTimings(stack.db, ids);
  const commits = await query<{ run_id: string; first_ms: number; last_ms: number }>(
    stack.db,
    sql`select run_id, (extract(epoch from min(finished_at)) * 1000)::float8 as first_ms, (extract(epoch from max(finished_at)) * 1000)::float8 as last_ms
        from steps where run_id = any(${idArray(ids)}) group by run_id`,
  );
  const firstStepMs = commits.map((c) => c.first_ms - (started.get(c.run_id) as number));
  const laterStepMs = commits.map((c) => (c.last_ms - c.first_ms) / (STEPS - 1));
  return { perStepMs, ...t, firstStepMs, laterStepMs, floorMs };
}

export const overheadPart: Part = {
  name: 'overhead',
  about: 'one 10-step chain run alone (API + 1 worker, default settings), per-step time, median of ≥ 20',
  async run(ctx) {
    const stack = await startStack({ workers: 1 });
    const floor = await openFloorLane();
    try {
      await singleRuns(stack, ctx.quick ? 1 : 5, floor); // connections, consumer groups
      const cold = await singleRuns(stack, ctx.quick ? 2 : 25, floor);
      await burst(stack, ctx.quick ? 20 : WARM_UP_RUNS);
      const r = await singleRuns(stack, ctx.quick ? 2 : 25, floor);
      const perStep = median(r.perStepMs);
      const alongside = median(r.floorMs);
      const coldPerStep = median(cold.perStepMs);
      const figures: Figure[] = [
        { part: 'overhead', label: 'per step, one 10-step run alone (POST → last commit) / 10', value: perStep, unit: 'ms', vsFloor: 'time', note: `${r.perStepMs.length} runs; ${(perStep / alongside).toFixed(1)}× the floor measured alongside` },
        { part: 'overhead', label: `the floor measured alongside (${FLOOR_PER_RUN} transitions after each run)`, value: alongside, unit: 'ms', vsFloor: 'time', note: `${r.floorMs.length} transitions` },
        { part: 'overhead', label: 'inside a step: claim → commit (step rows)', value: median(r.inStep), unit: 'ms', vsFloor: 'time' },
        { part: 'overhead', label: 'between steps: commit → next claim (step rows)', value: median(r.handOn), unit: 'ms', vsFloor: 'time' },
        { part: 'overhead', label: "the run's first step: POST → its commit (insert, wake-up, claim)", value: median(r.firstStepMs), unit: 'ms', vsFloor: 'time' },
        { part: 'overhead', label: 'each later step: commit → next commit (claimed by the commit before)', value: median(r.laterStepMs), unit: 'ms', vsFloor: 'time' },
        { part: 'overhead', label: `per step before the warm-up (after ${ctx.quick ? 1 : 5} runs alone, not ${WARM_UP_RUNS} at once)`, value: coldPerStep, unit: 'ms', vsFloor: 'time', note: `${(coldPerStep / median(cold.floorMs)).toFixed(1)}× the floor alongside; first step ${median(cold.firstStepMs).toFixed(2)} ms, later ${median(cold.laterStepMs).toFixed(2)} ms` },
      ];
      return figures;
    } finally {
      await floor.close();
      await stack.close();
    }
  },
};
