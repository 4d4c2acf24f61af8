/**
 * The run inspector in a real browser: Debian's Chromium driven by playwright-core,
 * against the API served over HTTP with API keys on. It signs in, starts a run from
 * the page, watches its steps appear live (no reload) with the LLM's tokens streaming,
 * approves the pending call, opens a step, presses "Replay from this step", and saves
 * screenshots under the test's temporary directory (their paths are printed).
 * The page must raise no script error and no Content-Security-Policy violation.
 *
 * Skips, saying why, where /usr/bin/chromium is not installed (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '@hono/node-server';
import * as v from 'valibot';
import { append, defineAgent, done, next, parallel, wait } from '../../runtime/define.ts';
import { loadFunctions } from '../../runtime/functions.ts';
import { createApiKey } from '../../runtime/store/api-keys.ts';
import { type TestPlatform, startTestPlatform, waitFor, waitForRun } from '../helpers/platform.ts';

const CHROMIUM = process.env.BATON_CHROMIUM ?? '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium, or set BATON_CHROMIUM): the browser test of /ui is skipped`;

const ANSWER =
  'The change moves retry backoff into the engine. Two notes: the jitter should use the full range, ' +
  'and the new test pins a timing that a loaded machine will miss. Otherwise it reads well.';

const triage = defineAgent({
  name: 'triage',
  description: 'Reads a change, drafts a review, lints and tests it side by side, asks a person, posts it.',
  input: v.object({ repo: v.string(), pr: v.number() }),
  start: 'read',
  steps: {
    read: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 400));
      return next('draft', { change: `${ctx.input.repo}#${ctx.input.pr}`, messages: append({ role: 'user', content: `Review ${ctx.input.repo}#${ctx.input.pr}` }) });
    },
    draft: async (ctx) => {
      const r = await ctx.llm.streamText({ instructions: 'You review pull requests. Be brief and concrete.', prompt: `Review the change ${String(ctx.state.change)}.` });
      return next('check', { draft: r.text, messages: append({ role: 'assistant', content: r.text }) });
    },
    check: () => parallel([{ step: 'lint' }, { step: 'tests' }], { join: 'gate' }),
    lint: async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (ctx.attempt === 1) throw new Error('style checker timed out');
      return done({ warnings: 0 });
    },
    tests: async () => {
      await new Promise((resolve) => setTimeout(resolve, 900));
      return done({ passed: 128 });
    },
    gate: (ctx) => next('approve', { checked: (ctx.branches ?? []).every((b) => b.ok) }),
    approve: (ctx) => wait('approval', { next: 'post', request: { tool: 'review.post_comment', args: { repo: 'acme/shop', pr: 42, body: String(ctx.state.draft).slice(0, 60) } } }),
    post: (ctx) => {
      const decision = ctx.signal?.payload as { approve?: boolean } | undefined;
      return done({ posted: decision?.approve === true, review: ctx.state.draft });
    },
  },
});

const broken = defineAgent({
  name: 'enrich',
  input: v.object({ id: v.number() }),
  start: 'lookup',
  maxAttempts: 2,
  steps: {
    lookup: () => {
      throw new Error('the CRM answered 503 twice');
    },
  },
});

let t: TestPlatform;
let base: string;
let key: string;
let server: ReturnType<typeof serve>;
let prId: string;
let shots: string;

before(async () => {
  if (skip) return;
  const functions = new Map([...(await loadFunctions(path.resolve('functions'))), ['triage', triage], ['enrich', broken]]);
  t = await startTestPlatform({ functions, env: { BATON_AUTH: 'on' }, llm: { reply: () => ANSWER, chunkDelayMs: 90, delayMs: 300 } });
  key = (await createApiKey(t.p.db, 'acme', 'browser test')).key;
  await new Promise<void>((resolve) => {
    server = serve({ fetch: t.api.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  shots = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-inspector-'));
  // Something to list: finished runs of each outcome.
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  for (const input of [{ steps: 3 }, { steps: 6 }]) await fetch(`${base}/v1/functions/chain/runs`, { method: 'POST', headers, body: JSON.stringify(input) });
  const pr = (await (await fetch(`${base}/v1/functions/pr-review/runs`, { method: 'POST', headers, body: '{"repo":"acme/shop","pr":42}' })).json()) as { id: string };
  const failed = (await (await fetch(`${base}/v1/functions/enrich/runs`, { method: 'POST', headers, body: '{"id":7}' })).json()) as { id: string };
  prId = pr.id;
  await Promise.all([waitForRun(t.p, pr.id), waitForRun(t.p, failed.id)]);
});

after(async () => {
  if (skip) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.close();
});

test('sign in, start a run, watch it live, approve, open a step, replay from it', { skip, timeout: 120_000 }, async (ctx) => {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
  });
  const problems: string[] = [];
  const saved: string[] = [];
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    const shot = async (name: string) => {
      const file = path.join(shots, `${String(saved.length + 1).padStart(2, '0')}-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      saved.push(file);
    };

    // Sign in: the form trades the key for an HttpOnly cookie, invisible to scripts.
    await page.goto(`${base}/ui`);
    await shot('sign-in');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/ui`);
    problems.length = 0; // the sign-in page itself answers 401, which Chromium logs as a failed load
    assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is HttpOnly');
    const cookies = await browser.cookies(base);
    assert.ok(cookies.some((c) => c.name === 'baton_session' && c.httpOnly && c.sameSite === 'Strict'));
    await page.locator('table.runs a.run-id').first().waitFor();
    await shot('runs-list');

    // Start a run from the page.
    await page.getByText('New run').click();
    await page.locator('[data-start-run] select[name=function]').selectOption('triage');
    assert.deepEqual(JSON.parse(await page.locator('[data-start-run] textarea').inputValue()), {}, 'no example.json: an empty object');
    await page.locator('[data-start-run] textarea').fill('{ "repo": "acme/shop", "pr": 42 }');
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/ui\/runs\/[0-9a-f-]{36}$/);
    const runId = page.url().split('/').at(-1) as string;
    await page.evaluate('window.marker = 1');

    // Steps appear live, the LLM's tokens stream into the page, and nothing reloads.
    await page.locator('.tl-row[data-seq="1"]').waitFor({ timeout: 20_000 });
    await page.locator('#live-stream:not([hidden]) #live-stream-text').waitFor({ timeout: 20_000 });
    const partial = await waitFor(async () => {
      const text = (await page.locator('#live-stream-text').textContent()) ?? '';
      return text.split(' ').length >= 6 && text;
    }, 'six streamed words', 20_000);
    assert.ok(partial && ANSWER.startsWith(partial.trim().slice(0, 20)), `streamed text: ${partial}`);
    await shot('run-streaming');
    await page.locator('.tl-row.branch[data-seq="3"] .retries').waitFor({ timeout: 20_000 });
    await page.locator('.tl-row.branch[data-seq="4"]').waitFor({ timeout: 20_000 });
    await page.locator('.waiting-card').waitFor({ timeout: 20_000 });
    assert.match(await page.locator('.waiting-card').innerText(), /review\.post_comment/);
    assert.equal(await page.evaluate('window.marker'), 1, 'the page was updated in place');
    await shot('run-waiting-for-approval');

    // Approve the pending call: the run finishes, live.
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.locator('#live[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    assert.deepEqual(await Promise.all((await page.locator('.tl-row').all()).map((row) => row.getAttribute('data-seq'))), ['0', '1', '2', '3', '4', '5', '6', '7']);
    assert.equal(await page.evaluate('window.marker'), 1, 'still the same page');
    const { run } = await waitForRun(t.p, runId);
    assert.deepEqual(run.output, { posted: true, review: ANSWER });

    // Open the LLM step: prompt, answer, patch, state it saw.
    await page.locator('.tl-row[data-seq="1"]').click();
    await page.locator('#step[data-seq="1"]').waitFor();
    const llmStep = await page.locator('#step').innerText();
    assert.match(llmStep, /You review pull requests/);
    assert.match(llmStep, /Review the change acme\/shop#42/);
    assert.match(llmStep, /moves retry backoff into the engine/);
    assert.match(page.url(), /\?step=1$/);
    await shot('step-llm');

    // Open the retried branch, then the fan-out step, and replay the run from there.
    await page.locator('.tl-row[data-seq="3"]').click();
    await page.locator('#step[data-seq="3"]').waitFor();
    assert.match(await page.locator('#step').innerText(), /style checker timed out/);
    await shot('step-retried-branch');
    await page.locator('.tl-row[data-seq="2"]').click();
    await page.locator('#step[data-seq="2"]').waitFor();
    await page.locator('#step').getByRole('button', { name: 'Replay from this step' }).click();
    await page.waitForURL((u) => /\/ui\/runs\/[0-9a-f-]{36}$/.test(u.pathname) && !u.pathname.endsWith(runId));
    const replayId = page.url().split('/').at(-1) as string;
    assert.match(await page.locator('.run-head').innerText(), new RegExp(`replay of ${runId}`));
    // The replay keeps steps 0 and 1, fans out again (lint retried again), then waits for approval.
    await page.locator('.waiting-card').waitFor({ timeout: 20_000 });
    await page.getByPlaceholder('note for the model (on reject)').fill('not this time');
    await page.getByRole('button', { name: 'Reject' }).click();
    await page.locator('#live[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    const replay = await waitForRun(t.p, replayId);
    assert.deepEqual(replay.run.output, { posted: false, review: ANSWER });
    assert.equal(replay.run.replayOf, runId);
    assert.match(await page.locator('#run-data').innerText(), /Output[\s\S]*"posted": false/, 'the output appears without a reload');
    await shot('replay-finished');

    // Shareable filtered list.
    await page.goto(`${base}/ui?function=triage`);
    assert.equal(await page.locator('table.runs a.run-id').count(), 2);
    await page.goto(`${base}/ui`);
    await shot('runs-list-after');

    // A tool step: the arguments it sent and the result it got, beside the gateway's audit row.
    await page.goto(`${base}/ui/runs/${prId}?step=0`);
    assert.match(await page.locator('#step').innerText(), /git\.get_diff[\s\S]*Arguments[\s\S]*Result/);
    await shot('step-tool');

    assert.deepEqual(problems, [], 'no script errors and no CSP violations');
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    for (const file of saved) ctx.diagnostic(`screenshot: ${file}`);
  }
});
