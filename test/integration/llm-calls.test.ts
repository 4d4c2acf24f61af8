/**
 * Model calls through `ctx.llm`, against the OpenAI-compatible stub over real HTTP,
 * counting the requests the stub receives:
 *   - one retry layer: the engine retries steps, so the AI SDK makes exactly one
 *     request per attempt; 429 and 5xx are retryable, 400/401/403 are not, and a
 *     429's Retry-After sets the next attempt's backoff;
 *   - the one-call rule: tools that carry `execute` and multi-step options are
 *     refused before any request is sent; tools without `execute` work, and the
 *     tool calls the model asks for come back to the step, unexecuted.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isStepCount, jsonSchema, tool } from 'ai';
import * as v from 'valibot';
import { type StepContext, defineAgent, done } from '../../runtime/define.ts';
import { executeStep } from '../../runtime/engine/execute-step.ts';
import { registryOf } from '../../runtime/functions.ts';
import type { GenerateOptions } from '../../runtime/llm/client.ts';
import { getRun } from '../../runtime/store/runs.ts';
import type { StubFailure, StubReply } from '../helpers/llm-stub.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';

const weather = { city: { type: 'string' as const } };
const definitions = {
  /** A definition only: the model may ask for it; the step (or the next step) runs it. */
  get_weather: tool({ description: 'the weather in a city', inputSchema: jsonSchema({ type: 'object', properties: weather }) }),
};
const executing = {
  get_weather: tool({
    description: 'the weather in a city',
    inputSchema: jsonSchema({ type: 'object', properties: weather }),
    execute: async () => ({ sunny: true }),
  }),
};

/** What each mode passes to ctx.llm; `stream` sends it through streamText instead. */
const MODES: Record<string, Partial<GenerateOptions>> = {
  plain: {},
  definitions: { tools: definitions },
  executing: { tools: executing },
  stopWhen: { tools: definitions, stopWhen: isStepCount(3) },
  maxSteps: { maxSteps: 3 } as Partial<GenerateOptions>,
  prepareStep: { prepareStep: () => undefined },
  sdkRetries: { maxRetries: 2 },
};

async function call(ctx: StepContext<{ mode: string; stream?: boolean }>) {
  const options = { prompt: `mode ${ctx.input.mode}`, ...MODES[ctx.input.mode] } as GenerateOptions;
  if (ctx.input.stream) {
    const r = await ctx.llm.streamText(options);
    return done({ text: r.text, toolCalls: r.toolCalls.map((c) => [c.toolName, c.input]) });
  }
  const r = await ctx.llm.generateText(options);
  return done({ text: r.text, toolCalls: r.toolCalls.map((c) => [c.toolName, c.input]) });
}

const agent = defineAgent({
  name: 'caller',
  input: v.object({ mode: v.string(), stream: v.optional(v.boolean()) }),
  start: 'call',
  maxAttempts: 2,
  steps: { call },
});

let failWith: ((call: number) => StubFailure | undefined) | undefined;
let replyWith: StubReply | undefined;
let t: TestPlatform;
before(async () => {
  t = await startTestPlatform({
    functions: registryOf(agent),
    tools: false,
    llm: { fail: (n) => failWith?.(n), reply: () => replyWith ?? 'sunny' },
  });
});
after(() => t.close());
beforeEach(() => {
  failWith = undefined;
  replyWith = undefined;
});

/** Runs `input` to its end and returns it with the number of requests the stub received meanwhile. */
async function runCounting(input: { mode: string; stream?: boolean }) {
  const before = t.llm?.calls.length ?? 0;
  const id = await trigger(t.api, 'caller', input);
  const full = await waitForRun(t.p, id);
  return { ...full, requests: (t.llm?.calls.length ?? 0) - before };
}

const errorOf = (run: { error: unknown }) => run.error as { code: string; retryable: boolean; attempt: number; message: string };

describe('one retry layer', () => {
  for (const stream of [false, true]) {
    test(`a 5xx is retried by the engine, one request per attempt (${stream ? 'streamText' : 'generateText'})`, async () => {
      failWith = () => ({ status: 503 });
      const { run, steps, requests } = await runCounting({ mode: 'plain', stream });
      assert.equal(run.status, 'failed');
      assert.deepEqual([errorOf(run).code, errorOf(run).retryable, errorOf(run).attempt], ['llm_error', true, 2]);
      assert.equal(steps[0].attempt, 2, 'both attempts ran');
      assert.equal(requests, 2, 'one request per attempt: the SDK retried nothing itself');
    });
  }

  for (const status of [400, 401, 403]) {
    test(`a ${status} is not retried`, async () => {
      failWith = () => ({ status });
      const { run, steps, requests } = await runCounting({ mode: 'plain' });
      assert.equal(run.status, 'failed');
      assert.deepEqual([errorOf(run).code, errorOf(run).retryable], ['llm_error', false]);
      assert.equal(steps[0].attempt, 1, 'no second attempt');
      assert.equal(requests, 1);
    });
  }

  test("a 429's Retry-After sets the next attempt's backoff, instead of the jittered default", async (tc) => {
    const p = await startTestPlatform({
      functions: registryOf(agent),
      tools: false,
      worker: false,
      // The default backoff draws from [0, 300] ms: a 2 s wait can only come from the header.
      env: { BATON_RETRY_BASE_MS: '300', BATON_RETRY_MAX_MS: '300' },
      llm: { fail: (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : undefined) },
    });
    tc.after(() => p.close());
    const id = await trigger(p.api, 'caller', { mode: 'plain' });
    const outcome = await executeStep(p.p, 'caller', { runId: id, seq: 0 }, { worker: 'test' });
    assert.equal(outcome.status, 'retrying');
    assert.equal(outcome.status === 'retrying' && outcome.delayMs, 2000);
    assert.equal(p.llm?.calls.length, 1, 'the SDK did not wait and retry by itself');
    const run = await getRun(p.p.db, id);
    const dueInMs = (run?.wakeAt?.getTime() ?? 0) - Date.now();
    assert.ok(dueInMs > 300 && dueInMs <= 2000, `the next attempt is due in ${dueInMs} ms, later than any jittered backoff`);
    // Before then the step is not claimable; afterwards it runs and succeeds.
    const early = await executeStep(p.p, 'caller', { runId: id, seq: 0 }, { worker: 'test' });
    assert.equal(early.status, 'skipped');
  });
});

describe('the one-call rule', () => {
  for (const mode of ['executing', 'stopWhen', 'maxSteps', 'prepareStep', 'sdkRetries']) {
    for (const stream of [false, true]) {
      test(`ctx.llm refuses ${mode} before any request is sent (${stream ? 'streamText' : 'generateText'})`, async () => {
        replyWith = { toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] };
        const { run, steps, requests } = await runCounting({ mode, stream });
        assert.equal(run.status, 'failed');
        assert.deepEqual([errorOf(run).code, errorOf(run).retryable], ['one_call_per_step', false]);
        assert.equal(steps[0].attempt, 1, 'not retried');
        assert.equal(requests, 0, 'no request reached the model');
      });
    }
  }

  for (const stream of [false, true]) {
    test(`tools without execute work: the model's tool calls come back to the step (${stream ? 'streamText' : 'generateText'})`, async () => {
      replyWith = { toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] };
      const { run, steps, requests } = await runCounting({ mode: 'definitions', stream });
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      assert.deepEqual((run.output as { toolCalls: unknown }).toolCalls, [['get_weather', { city: 'Oslo' }]]);
      assert.equal(requests, 1, 'one model call, nothing executed, no second call');
      assert.equal(steps[0].kind, 'llm');
      const sent = t.llm?.calls.at(-1);
      assert.deepEqual(
        (sent?.tools as Array<{ function: { name: string } }>).map((x) => x.function.name),
        ['get_weather'],
        'the definitions were offered to the model',
      );
    });
  }
});
