/**
 * `baton run --follow` with real processes: on a terminal (a pseudo-terminal from
 * util-linux `script`) it shows the step in progress with its elapsed time and the
 * LLM's tokens as they stream; in a pipe, plain lines; both end with a summary. It
 * survives an API restart by resuming the event stream with Last-Event-ID.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cli, hasScript, startCli, stripAnsi } from '../helpers/cli.ts';
import { type TestPlatform, startTestPlatform, waitFor } from '../helpers/platform.ts';
import { freePort } from '../helpers/ports.ts';
import { type BatonProcess, startApiProcess, stopAll } from '../helpers/processes.ts';

const REVIEW = 'Looks fine overall, but the discount is never validated against negative values.';

let t: TestPlatform;
let api: BatonProcess & { url: string };
let port: number;
let env: Record<string, string>;
let hold: { release: () => void; held: Promise<void> } | null = null;

before(async () => {
  t = await startTestPlatform({
    llm: {
      reply: () => REVIEW,
      // Slow enough that a person (and this test) sees the step in progress and the words arrive.
      delayMs: 1300,
      chunkDelayMs: 70,
      gate: () => hold?.held,
    },
  });
  port = await freePort();
  api = await startApiProcess({ ...t.env, PORT: String(port) });
  env = { BATON_URL: api.url, BATON_API_WAIT_S: '30' };
});
after(async () => {
  hold?.release();
  await stopAll([api], 'SIGTERM');
  await t.close();
});

test('on a terminal: the step in progress with its elapsed time, the tokens as they stream, then a summary', { skip: !hasScript() && 'util-linux `script` is not installed' }, async () => {
  const r = await cli(['run', 'pr-review', '--follow'], { env, tty: true });
  assert.equal(r.code, 0, r.stdout);
  const screen = stripAnsi(r.stdout);
  // The status line of the running LLM step, redrawn with its elapsed time (the call takes over 1.3 s).
  const elapsed = [...screen.matchAll(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] +1 review +llm +(?:(\d+) ms|([\d.]+) s)/g)].map((m) => (m[1] ? Number(m[1]) / 1000 : Number(m[2])));
  assert.ok(elapsed.length >= 3 && Math.max(...elapsed) >= 1, `status lines with the elapsed time: ${elapsed.join(', ')}`);
  assert.ok(r.stdout.includes('\r\x1b[2K'), 'the status line is redrawn in place');
  // The review's words appear, in order, before the step's completion line.
  const words = REVIEW.split(' ');
  let at = 0;
  for (const word of words) {
    const found = screen.indexOf(word, at);
    assert.ok(found >= 0, `"${word}" streamed (after position ${at})`);
    at = found;
  }
  const done = screen.search(/✓ +1 review +llm +\d/);
  assert.ok(done > at, 'the step completes after its tokens');
  // Streamed, not printed at the end: the status line was redrawn between the first word and the last.
  assert.match(screen.slice(screen.indexOf(words[0]), at), /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] +1 review/);
  assert.match(screen, /✓ +0 fetch_diff +tool +(?:\d+ ms|\d+\.\d s|\d+ min \d+ s)/);
  assert.match(screen, /✓ +2 post +tool +(?:\d+ ms|\d+\.\d s|\d+ min \d+ s)/);
  assert.match(screen, /run succeeded: 3 steps, 3 attempts, 11 input \+ 7 output tokens, [\d.]+ s/);
});

test('in a pipe: plain lines, no terminal codes, no streamed text; the same summary and the output on stdout', async () => {
  const r = await cli(['run', 'pr-review', '--follow'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stderr.includes('\x1b'), 'no terminal control sequences');
  assert.doesNotMatch(r.stderr, /never validated/, 'no streamed tokens in a log');
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0], /^accepted in [\d.]+ ms: http:\/\/127\.0\.0\.1:\d+\/v1\/runs\/\S+$/);
  assert.match(lines[1], /^ {2}✓ {2}0 fetch_diff +tool +(?:\d+ ms|\d+\.\d s|\d+ min \d+ s)$/);
  assert.match(lines[2], /^ {2}✓ {2}1 review +llm +\d+\.\d s$/);
  assert.match(lines[3], /^ {2}✓ {2}2 post +tool +(?:\d+ ms|\d+\.\d s|\d+ min \d+ s)$/);
  assert.match(lines[4], /^run succeeded: 3 steps, 3 attempts, 11 input \+ 7 output tokens, [\d.]+ s$/);
  const [id, ...output] = r.stdout.split('\n');
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal((JSON.parse(output.join('\n')) as { review: string }).review, REVIEW);
});

test('--json: every event as a JSON line, then the summary', async () => {
  const r = await cli(['run', 'pr-review', '--follow', '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; id: string | null; data: Record<string, unknown> });
  assert.deepEqual(
    events.filter((e) => e.event !== 'step.delta').map((e) => `${e.event} ${e.id}`),
    ['step.started 0-1-0', 'step.completed 0-1-1', 'step.started 1-1-0', 'step.completed 1-1-1', 'step.started 2-1-0', 'step.completed 2-1-1', 'run.finished end', 'summary null'],
  );
  assert.equal(events.filter((e) => e.event === 'step.delta').map((e) => e.data.text).join(''), REVIEW);
  assert.deepEqual(events.at(-1)?.data, { ...(events.at(-1)?.data as object), status: 'succeeded', steps: 3, attempts: 3, inputTokens: 11, outputTokens: 7 });
});

test('--follow survives an API restart: it resumes with Last-Event-ID, each step shown once', async () => {
  let release = () => {};
  hold = { held: new Promise<void>((resolve) => (release = resolve)), release: () => release() };
  const follower = startCli(['run', 'pr-review', '--follow'], { env });
  await waitFor(() => t.llm?.inflight, 'the review step in its LLM call', 20_000);
  await waitFor(() => /✓ {2}0 fetch_diff/.test(follower.output()), 'the first step shown');

  // The API goes away mid-run and comes back on the same address.
  api.signal('SIGTERM');
  await api.exited;
  await waitFor(() => /connection to the API lost; reconnecting, resuming after event 1-1-0/.test(follower.output()), 'the follower noticed');
  api = await startApiProcess({ ...t.env, PORT: String(port) });
  hold.release();
  hold = null;

  const r = await follower.done;
  assert.equal(r.code, 0, r.stderr);
  for (const step of ['0 fetch_diff', '1 review', '2 post']) {
    assert.equal(r.stderr.split(`✓  ${step}`).length - 1, 1, `${step} shown once:\n${r.stderr}`);
  }
  assert.match(r.stderr, /waiting for the API at /);
  assert.match(r.stderr, /^run succeeded: 3 steps/m);
});

test('logs: for people on a terminal, JSON lines otherwise; Ctrl-C says what is drained and for how long', { skip: !hasScript() && 'util-linux `script` is not installed' }, async () => {
  const apiEnv = { ...t.env, HOST: '127.0.0.1', PORT: '0', BATON_LOG_LEVEL: 'info' };
  const onTerminal = startCli(['api'], { env: apiEnv, tty: true });
  await waitFor(() => /api listening/.test(onTerminal.output()), 'the API on a terminal to start', 30_000);
  onTerminal.signal('SIGTERM');
  const pretty = stripAnsi((await onTerminal.done).stdout);
  assert.match(pretty, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: api listening$/m);
  assert.doesNotMatch(pretty, /"level":/);

  const inPipe = startCli(['api'], { env: apiEnv });
  await waitFor(() => /api listening/.test(inPipe.output()), 'the API in a pipe to start', 30_000);
  inPipe.signal('SIGINT');
  const { code, stderr } = await inPipe.done;
  assert.equal(code, 0, stderr);
  const line = stderr.split('\n').find((l) => l.includes('"msg":"api listening"'));
  assert.ok(line, stderr);
  assert.equal((JSON.parse(line) as { level: number }).level, 30);
  assert.match(stderr, /^baton api: SIGINT: stopping; open requests get up to 2 s \(again to exit at once\)$/m);
});
