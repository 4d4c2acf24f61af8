/**
 * OpenTelemetry across processes (README "Observability"): the API, a worker and the
 * tool servers (`baton tools`) run as separate processes that export OTLP/HTTP to a
 * receiver this test serves. A 3-step pr-review run, whose LLM step fails once (so it
 * has two attempts, the second woken by a delayed message that carries no trace),
 * must come back as one trace: the API's root span, a span per step attempt under it
 * with the step's attributes, the tool-call spans under their steps, and the tool
 * server's spans under those. A Knative-shaped pair (dispatcher + function app) puts
 * the function app's step spans under the dispatcher's.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { runs } from '../../schema/tables.ts';
import { connectRedis, createRedisQueue } from '../../runtime/queue/redis.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { type TestPlatform, startTestPlatform, waitFor, waitForRun } from '../helpers/platform.ts';
import { type BatonProcess, ROOT, startApiProcess, startWorkerProcess, stopAll } from '../helpers/processes.ts';
import { REDIS_URL } from '../helpers/redis.ts';

let t: TestPlatform;
let receiver: OtlpReceiver;
const children: ChildProcess[] = [];
const procs: BatonProcess[] = [];
let apiUrl = '';
let otel: Record<string, string> = {};
let toolUrls: Record<string, string> = {};
const input = JSON.parse(fs.readFileSync(path.join(ROOT, 'functions/pr-review/example.json'), 'utf8')) as Record<string, unknown>;

/** A `baton` child process (stderr kept), resolved once its stderr matches `ready`. */
async function startCli(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts/baton.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: '0', BATON_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let text = '';
  child.stderr?.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baton ${args.join(' ')} did not start:\n${text}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`baton ${args.join(' ')} exited ${code}:\n${text}`)));
    child.stderr?.on('data', (chunk: string) => {
      text += chunk;
      const match = ready.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

before(async () => {
  receiver = await startOtlpReceiver();
  // The LLM's first call answers 500: the review step runs twice.
  t = await startTestPlatform({ worker: false, tools: false, llm: { failFirst: 1 } });
  otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
  const tools = await startCli(['tools'], { ...t.env, ...otel, BATON_TOOL_PUBLIC_KEY: t.keys.publicKeyPem }, /baton tools: git (\S+)[^]*baton tools: review (\S+)/);
  toolUrls = { BATON_TOOL_GIT_URL: tools.match[1], BATON_TOOL_REVIEW_URL: tools.match[2] };
  const [api, worker] = await Promise.all([startApiProcess({ ...t.env, ...otel }), startWorkerProcess({ ...t.env, ...toolUrls, ...otel, BATON_PRICES: JSON.stringify({ 'stub-model': { input: 1, output: 2 } }) }, 'worker-traced')]);
  procs.push(api, worker);
  apiUrl = api.url;
});

after(async () => {
  await stopAll(procs, 'SIGTERM');
  for (const child of children) await stop(child);
  await t?.close();
  await receiver?.close();
});

async function startRun(headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${apiUrl}/v1/functions/pr-review/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });
  assert.equal(res.status, 202);
  return ((await res.json()) as { id: string }).id;
}

const byName = (spans: ReceivedSpan[], name: string) => spans.filter((s) => s.name === name);

test('a 3-step run across API, worker and tool server processes is one trace, a span per step attempt', async () => {
  const runId = await startRun();
  const done = await waitForRun(t.p, runId, undefined, 60_000);
  assert.equal(done.run.status, 'succeeded');
  const traceId = runId.replaceAll('-', '');

  // Spans arrive in batches: wait for the last step's tool server span.
  await waitFor(
    () => receiver.spans.some((s) => s.traceId === traceId && s.name === 'tools/call post_comment' && s.service === 'baton-tools'),
    'the post step tool server span',
    20_000,
  );
  await waitFor(() => receiver.spans.filter((s) => s.traceId === traceId && s.name.startsWith('step ')).length >= 4, 'four step spans', 10_000);
  assert.deepEqual(receiver.rejected, []);
  const spans = receiver.spans.filter((s) => s.traceId === traceId);

  // The root: made by the API when it created the run, stored on the run.
  const [root, ...otherRoots] = spans.filter((s) => s.parentSpanId === '');
  assert.equal(otherRoots.length, 0, 'one root span');
  assert.equal(root.name, 'run pr-review');
  assert.equal(root.service, 'baton-api');
  assert.equal(root.attributes['baton.run_id'], runId);
  const [row] = await t.p.db.select({ traceContext: runs.traceContext }).from(runs).where(eq(runs.id, runId));
  assert.equal(row.traceContext, `00-${traceId}-${root.spanId}-01`);
  const view = (await (await fetch(`${apiUrl}/v1/runs/${runId}`)).json()) as { traceId: string | null };
  assert.equal(view.traceId, traceId, 'GET /v1/runs/:id names the trace');

  // A span per step attempt, in the worker process, children of the root.
  const steps = spans.filter((s) => s.name.startsWith('step ')).sort((a, b) => Number(a.startNs - b.startNs));
  assert.deepEqual(
    steps.map((s) => [s.name, s.attributes['baton.seq'], s.attributes['baton.attempt'], s.attributes['baton.outcome']]),
    [
      ['step fetch_diff', 0, 1, 'committed'],
      ['step review', 1, 1, 'retrying'],
      ['step review', 1, 2, 'committed'],
      ['step post', 2, 1, 'committed'],
    ],
  );
  for (const s of steps) {
    assert.equal(s.service, 'baton-worker');
    assert.equal(s.parentSpanId, root.spanId, `${s.name} #${s.attributes['baton.attempt']} is a child of the run's root`);
    assert.equal(s.attributes['baton.function'], 'pr-review');
    assert.equal(s.attributes['baton.run_id'], runId);
    assert.equal(s.attributes['baton.step'], s.name.slice('step '.length));
    assert.match(String(s.attributes['baton.worker']), /^worker-traced-/);
  }
  const [fetchDiff, failed, review, post] = steps;
  assert.equal(fetchDiff.attributes['baton.step.kind'], 'tool');
  assert.equal(fetchDiff.attributes['baton.tool'], 'git.get_diff');
  assert.equal(post.attributes['baton.tool'], 'review.post_comment');
  assert.equal(failed.status, 2, 'a failed attempt is an error span');
  assert.equal(failed.attributes['baton.step.kind'], 'llm');
  assert.equal(review.status, 0);
  assert.equal(review.attributes['baton.step.kind'], 'llm');
  assert.equal(review.attributes['gen_ai.request.model'], 'stub-model');
  assert.ok(Number(review.attributes['gen_ai.usage.input_tokens']) > 0, 'input tokens on the LLM step');
  assert.ok(Number(review.attributes['gen_ai.usage.output_tokens']) > 0, 'output tokens on the LLM step');
  assert.ok(Number(review.attributes['baton.cost_usd']) > 0, 'what the tokens cost, priced by BATON_PRICES');
  // The LLM call itself: a client span under each review attempt (an error for the one that failed).
  for (const [attempt, status] of [
    [failed, 2],
    [review, 0],
  ] as const) {
    const chat = byName(spans, 'chat stub-model').filter((s) => s.parentSpanId === attempt.spanId);
    assert.equal(chat.length, 1, `one LLM span under review attempt ${attempt.attributes['baton.attempt']}`);
    assert.equal(chat[0].kind, 3);
    assert.equal(chat[0].status, status);
  }
  const chat = byName(spans, 'chat stub-model').find((s) => s.parentSpanId === review.spanId);
  assert.equal(chat?.attributes['gen_ai.usage.output_tokens'], review.attributes['gen_ai.usage.output_tokens']);

  // Tool calls: a client span under the step, the tool server's span (another process) under it.
  for (const [step, tool] of [
    [fetchDiff, 'get_diff'],
    [post, 'post_comment'],
  ] as const) {
    const client = byName(spans, `tools/call ${tool}`).filter((s) => s.service === 'baton-worker');
    assert.equal(client.length, 1, `one client span for ${tool}`);
    assert.equal(client[0].parentSpanId, step.spanId);
    const server = byName(spans, `tools/call ${tool}`).filter((s) => s.service === 'baton-tools');
    assert.equal(server.length, 1, `one tool server span for ${tool}`);
    assert.equal(server[0].parentSpanId, client[0].spanId, `the ${tool} server span is under the step's tool call`);
    assert.equal(server[0].kind, 2);
    assert.equal(server[0].attributes['baton.idempotency_key'], `${runId}:${step.attributes['baton.seq']}`);
  }

});

test("a run started with a traceparent joins the caller's trace", async () => {
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const runId = await startRun({ traceparent: `00-${callerTrace}-${callerSpan}-01` });
  assert.equal((await waitForRun(t.p, runId, undefined, 60_000)).run.status, 'succeeded');
  await waitFor(() => receiver.spans.filter((s) => s.traceId === callerTrace && s.name.startsWith('step ')).length >= 3, 'its step spans', 20_000);
  const spans = receiver.spans.filter((s) => s.traceId === callerTrace);
  const root = byName(spans, 'run pr-review')[0];
  assert.equal(root.parentSpanId, callerSpan);
  for (const s of spans.filter((x) => x.name.startsWith('step '))) assert.equal(s.parentSpanId, root.spanId);
});

test('a wake-up carries the trace through Redis (a message without one stays without)', async () => {
  const client = await connectRedis({ url: REDIS_URL });
  const queue = createRedisQueue({ client, prefix: t.prefix });
  try {
    await queue.prepare(['trace-probe']);
    const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await queue.publish('trace-probe', { runId: 'r1', seq: 3, trace });
    await queue.publish('trace-probe', { runId: 'r2', seq: 0 });
    const got = await queue.read(['trace-probe'], 'probe', 10, 1000);
    assert.deepEqual(
      got.map((d) => d.message),
      [
        { runId: 'r1', seq: 3, trace },
        { runId: 'r2', seq: 0 },
      ],
    );
  } finally {
    await queue.close();
    await client.close();
  }
});

test("Knative shape: the dispatcher's span is the parent of the function app's step span", async () => {
  // The in-process worker steps aside: a dispatcher drains the stream and POSTs each step to the function app.
  await stopAll(procs.splice(1), 'SIGTERM');
  const invoke = { BATON_INVOKE_TOKEN: 'invoke-secret-for-this-test-0123456789abcdef' };
  const fnApp = await startCli(
    ['worker', 'pr-review', '--serve'],
    { ...t.env, ...toolUrls, ...otel, ...invoke, OTEL_SERVICE_NAME: 'pr-review-function' },
    /on (http:\/\/\S+)/,
  );
  await startCli(['worker', 'pr-review', '--dispatch', `${fnApp.match[1]}/invoke`], { ...t.env, ...otel, ...invoke }, /baton worker \S+: pr-review/);
  const runId = await startRun();
  assert.equal((await waitForRun(t.p, runId, undefined, 60_000)).run.status, 'succeeded');
  const traceId = runId.replaceAll('-', '');
  await waitFor(() => receiver.spans.filter((s) => s.traceId === traceId && s.name === 'step post').length === 1, 'the post step span', 20_000);
  await waitFor(() => receiver.spans.filter((s) => s.traceId === traceId && s.name === 'dispatch pr-review').length === 3, 'three dispatch spans', 10_000);
  const spans = receiver.spans.filter((s) => s.traceId === traceId);
  const root = byName(spans, 'run pr-review')[0];
  const dispatches = byName(spans, 'dispatch pr-review');
  for (const d of dispatches) {
    assert.equal(d.service, 'baton-worker');
    assert.equal(d.parentSpanId, root.spanId);
  }
  const steps = spans.filter((s) => s.name.startsWith('step '));
  assert.equal(steps.length, 3);
  for (const s of steps) {
    assert.equal(s.service, 'pr-review-function');
    const parent = dispatches.find((d) => d.spanId === s.parentSpanId);
    assert.ok(parent, `${s.name} is under a dispatch span`);
    assert.equal(parent.attributes['baton.seq'], s.attributes['baton.seq']);
  }
});
