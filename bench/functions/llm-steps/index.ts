/**
 * llm-steps: three steps, each exactly one LLM call, the shape of an agent that waits on
 * its model (the agents-per-pod part runs a thousand of these against a slow stub).
 */
import * as v from 'valibot';
import { append, defineAgent, done, next } from '../../../runtime/define.ts';

const Input = v.object({ topic: v.pipe(v.string(), v.maxLength(200)) });

export default defineAgent({
  name: 'llm-steps',
  description: 'Three LLM calls in a row (benchmarks).',
  input: Input,
  start: 'ask',
  steps: {
    ask: async (ctx) => {
      const { text } = await ctx.llm.generateText({ prompt: `Outline ${ctx.input.topic}` });
      return next('refine', { messages: append({ role: 'assistant', content: text }) });
    },
    refine: async (ctx) => {
      const { text } = await ctx.llm.generateText({ prompt: `Refine the outline of ${ctx.input.topic}` });
      return next('answer', { messages: append({ role: 'assistant', content: text }) });
    },
    answer: async (ctx) => {
      const { text } = await ctx.llm.generateText({ prompt: `Answer about ${ctx.input.topic}` });
      return done({ answer: text }, { messages: append({ role: 'assistant', content: text }) });
    },
  },
});
