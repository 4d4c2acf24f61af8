import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { Agent } from '../define.ts';
import type { Platform } from '../platform.ts';
import type { ClaimedStep } from '../store/claim.ts';
import { createStepContext } from './context.ts';

test("ctx.log writes one line with the step's run, seq, step and function beside its fields", () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const p = { log: pino({ level: 'info' }, sink), model: { load: async () => ({}), id: 'm', byId: async () => ({}), answersAs: (id: string) => id }, config: { prices: {} } } as unknown as Platform;
  const claimed = { runId: 'r-1', seq: 4, step: 'ask', attempt: 1, tenant: 'default', input: {}, state: {} } as unknown as ClaimedStep;
  const { ctx } = createStepContext(p, { name: 'fn', tools: [] } as unknown as Agent, claimed, new AbortController().signal, Date.now() + 1000);
  assert.equal(lines.length, 0, 'nothing is written before the step logs');
  ctx.log('hello', { n: 1 });
  ctx.log('again');
  assert.equal(lines.length, 2);
  assert.deepEqual(
    [lines[0].msg, lines[0].n, lines[0].runId, lines[0].seq, lines[0].step, lines[0].function, lines[1].msg, lines[1].runId],
    ['hello', 1, 'r-1', 4, 'ask', 'fn', 'again', 'r-1'],
  );
});
