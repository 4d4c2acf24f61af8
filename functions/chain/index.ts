/**
 * chain: N steps that make no external call, for measuring what the runtime itself
 * costs per step (`npm run bench`). Each step counts itself into the state and hands
 * the baton to the next; the last one finishes the run with the count.
 */
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';

/** A run of more steps than this is a mistake, not a benchmark (10,000 steps ≈ 10,000 rows). */
export const MAX_STEPS = 10_000;

const Input = v.object({
  steps: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_STEPS)),
});

interface State extends Record<string, unknown> {
  done?: number;
}

export default defineAgent<typeof Input, State>({
  name: 'chain',
  description: 'N no-op steps ({ "steps": N }): the runtime overhead per step, for benchmarks.',
  input: Input,
  start: 'step',
  steps: {
    step: (ctx) => {
      const count = (ctx.state.done ?? 0) + 1;
      return count >= ctx.input.steps ? done({ steps: count }, { done: count }) : next('step', { done: count });
    },
  },
});
