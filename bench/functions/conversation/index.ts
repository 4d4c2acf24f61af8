/**
 * conversation: a long transcript. Each of `steps` steps appends one message of `bytes`
 * characters (random base64, so compression cannot flatter the storage figures) and
 * makes no external call: what the long-conversation part measures is storage per step
 * and the state load as the transcript grows.
 */
import crypto from 'node:crypto';
import * as v from 'valibot';
import { append, defineAgent, done, next } from '../../../runtime/define.ts';

const Input = v.object({
  steps: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65_536)),
});

interface State extends Record<string, unknown> {
  messages?: Array<{ role: string; content: string }>;
}

export default defineAgent<typeof Input, State>({
  name: 'conversation',
  description: 'A transcript growing by `bytes` per step for `steps` steps (benchmarks).',
  input: Input,
  start: 'turn',
  steps: {
    turn: (ctx) => {
      const count = (ctx.state.messages?.length ?? 0) + 1;
      const content = crypto.randomBytes(Math.ceil((ctx.input.bytes * 3) / 4)).toString('base64').slice(0, ctx.input.bytes);
      const patch = { messages: append({ role: count % 2 ? 'user' : 'assistant', content }) };
      return count >= ctx.input.steps ? done({ messages: count }, patch) : next('turn', patch);
    },
  },
});
