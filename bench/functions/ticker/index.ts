/**
 * ticker: a run that stays live and keeps moving, `steps` steps of `ms` each (a model
 * call's wait, without a model). The event-stream benchmark (bench/sse.ts) watches
 * a hundred of these.
 */
import * as v from 'valibot';
import { defineAgent, done, next } from '../../../runtime/define.ts';

const Input = v.object({
  steps: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000)),
  ms: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(60_000)),
});

export default defineAgent({
  name: 'ticker',
  description: 'Steps that each wait `ms` (benchmarks).',
  input: Input,
  start: 'tick',
  steps: {
    tick: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, ctx.input.ms));
      const n = ((ctx.state as { n?: number }).n ?? 0) + 1;
      return n >= ctx.input.steps ? done({ n }) : next('tick', { n });
    },
  },
});
