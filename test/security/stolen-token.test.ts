/**
 * Attack 2, a stolen capability token. Real tokens are taken off the wire from two
 * runs of the demo agent and misused: for the other run's idempotency key, after
 * expiry, with a tampered payload, against the wrong tool server. Each is refused,
 * and nothing happens at the tool. A gateway pointed at the wrong server gets the
 * server's refusal, and that is audited as a denial.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { eq } from 'drizzle-orm';
import { loadFunctions } from '../../runtime/functions.ts';
import { toolCalls } from '../../schema/tables.ts';
import { generateKeyPair, loadPrivateKey, mintCapability } from '../../tools/lib/capability.ts';
import { answerText, rpc, toolsCall, toolsList } from '../helpers/mcp.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { makeRepo, startToolServers, type ToolServers } from '../helpers/tool-servers.ts';

const STEP_TIMEOUT_MS = 20_000;
let dir: string;
let tools: ToolServers;
let t: TestPlatform;
let runA: string;
let runB: string;

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { run: string; seq: number; aud: string; fn: string; tools: string[]; iat: number; exp: number };

/** Re-encodes a token's claims and keeps its signature: all an attacker can do without the private key. */
function tamper(token: string, change: (c: Record<string, unknown>) => void): string {
  const [prefix, body, sig] = token.split('.');
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
  change(claims);
  return `${prefix}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
}

const tokenOf = (server: string, tool: string, run: string) => {
  const token = tools.tokensFor(server, tool).find((tok) => claimsOf(tok).run === run);
  assert.ok(token, `a real ${server}.${tool} token of run ${run}`);
  return token;
};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-stolen-'));
  const repo = makeRepo(path.join(dir, 'repo'), [{ message: 'add', files: { 'a.js': 'export const a = 1;\n' } }]);
  const keys = generateKeyPair();
  tools = await startToolServers({ publicKeyPem: keys.publicKeyPem, repo });
  t = await startTestPlatform({
    keys,
    tools: false,
    llm: 'offline',
    functions: await loadFunctions(path.resolve(import.meta.dirname, '../../functions'), ['pr-review']),
    env: { BATON_TOOL_GIT_URL: tools.urls.git, BATON_TOOL_REVIEW_URL: tools.urls.review, BATON_STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS) },
  });
  runA = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 1 });
  runB = await trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: 2 });
  for (const id of [runA, runB]) assert.equal((await waitForRun(t.p, id)).run.status, 'succeeded');
});

after(async () => {
  await t?.close();
  await tools?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('real tokens are narrow: one server, the declared tools, one step, expiring with the step plus a margin', () => {
  const c = claimsOf(tokenOf('review', 'post_comment', runA));
  assert.equal(c.aud, 'review');
  assert.deepEqual(c.tools, ['post_comment']);
  assert.equal(c.seq, 2);
  const stepTimeoutS = (t.p.functions.get('pr-review')?.timeoutMs ?? STEP_TIMEOUT_MS) / 1000;
  // iat is floored and exp is ceiled: one second of rounding on top of the 30 s margin.
  assert.ok(c.exp - c.iat <= stepTimeoutS + 31, `lifetime ${c.exp - c.iat} s for a ${stepTimeoutS} s step`);
  assert.ok(c.exp - c.iat >= stepTimeoutS, 'long enough for the step');
});

test("run A's token cannot act under run B's idempotency key", async () => {
  const stolen = tokenOf('review', 'post_comment', runA);
  const before = tools.review.list({}).length;
  const forB = await rpc(tools.urls.review, toolsCall('post_comment', { repo: 'acme/shop', pr: 2, body: 'forged' }, `${runB}:2`), { token: stolen });
  assert.equal(forB.status, 403);
  assert.match(answerText(forB), /the idempotency key does not belong to this token/);
  // Without a key, the server keys on the token's own run:seq, so the replay only finds A's comment again.
  const replay = await rpc(tools.urls.review, toolsCall('post_comment', { repo: 'acme/shop', pr: 2, body: 'forged' }), { token: stolen });
  assert.equal(replay.status, 200);
  const structured = replay.body?.result?.structuredContent as { created: boolean; comment: { pr: number } };
  assert.equal(structured.created, false);
  assert.equal(structured.comment.pr, 1, "it is run A's own comment");
  assert.equal(tools.review.list({}).length, before, 'no new comment');
});

test('a tampered token fails: wider scope, another run, later expiry, another audience', async () => {
  const stolen = tokenOf('review', 'post_comment', runA);
  const cases: Array<[string, string, unknown]> = [
    ['scope widened to delete_all', tamper(stolen, (c) => (c.tools = ['post_comment', 'delete_all'])), toolsCall('delete_all', { repo: 'acme/shop' })],
    ['run switched to B', tamper(stolen, (c) => (c.run = runB)), toolsCall('post_comment', { repo: 'acme/shop', pr: 2, body: 'x' }, `${runB}:2`)],
    ['expiry pushed a day out', tamper(stolen, (c) => (c.exp = Number(c.exp) + 86_400)), toolsCall('list_comments', {})],
    ['audience switched to git', tamper(stolen, (c) => (c.aud = 'git')), toolsList()],
  ];
  for (const [what, token, body] of cases) {
    const url = what.includes('git') ? tools.urls.git : tools.urls.review;
    const a = await rpc(url, body, { token });
    assert.equal(a.status, 401, what);
    assert.match(answerText(a), /bad signature/, what);
  }
  const forged = mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), { ...claimsOf(stolen), tools: ['delete_all'] });
  assert.equal((await rpc(tools.urls.review, toolsCall('delete_all', { repo: 'acme/shop' }), { token: forged })).status, 401, 'signed by a key of our own');
  assert.equal((await rpc(tools.urls.review, toolsCall('delete_all', { repo: 'acme/shop' }))).status, 401, 'no token at all');
  assert.equal(tools.review.list({ repo: 'acme/shop' }).length, 2, 'both reviews are still there');
});

test('a token is refused by every server but its own', async () => {
  const review = tokenOf('review', 'post_comment', runA);
  const git = tokenOf('git', 'get_diff', runA);
  const atGit = await rpc(tools.urls.git, toolsCall('get_diff', { range: 'HEAD' }), { token: review });
  assert.equal(atGit.status, 403);
  assert.match(answerText(atGit), /token is for "review", not "git"/);
  const atReview = await rpc(tools.urls.review, toolsCall('post_comment', { repo: 'acme/shop', pr: 1, body: 'x' }), { token: git });
  assert.equal(atReview.status, 403);
  assert.match(answerText(atReview), /token is for "git", not "review"/);
});

test('a replayed token fails once it has expired', async () => {
  // Real tokens live for the step timeout plus a 30 s margin; this one is minted the
  // same way with a one-second life, so the test need not wait half a minute.
  const exp = Math.floor(Date.now() / 1000) + 1;
  const token = mintCapability(loadPrivateKey(t.keys.privateKeyPem), { aud: 'git', run: runA, seq: 0, fn: 'pr-review', tools: ['get_diff'], exp });
  const fresh = await rpc(tools.urls.git, toolsCall('get_diff', { range: 'HEAD' }), { token });
  assert.equal(fresh.status, 200, answerText(fresh));
  while (Date.now() < exp * 1000) await sleep(50);
  const replayed = await rpc(tools.urls.git, toolsCall('get_diff', { range: 'HEAD' }), { token });
  assert.equal(replayed.status, 401);
  assert.match(answerText(replayed), /token expired/);
});

test("a gateway sent to the wrong server gets that server's refusal, audited as a denial", async () => {
  const misrouted = await startTestPlatform({
    keys: t.keys,
    tools: false,
    llm: 'offline',
    functions: t.p.functions,
    // The review server's URL points at the git server: it must refuse review tokens.
    env: { BATON_TOOL_GIT_URL: tools.urls.git, BATON_TOOL_REVIEW_URL: tools.urls.git },
  });
  try {
    const id = await trigger(misrouted.api, 'pr-review', { repo: 'acme/shop', pr: 3 });
    const { run } = await waitForRun(misrouted.p, id);
    assert.equal(run.status, 'failed');
    assert.equal((run.error as { code: string }).code, 'tool_denied');
    const rows = await misrouted.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(toolCalls.id);
    assert.deepEqual(rows.map((r) => [r.seq, r.server, r.tool, r.decision, r.outcome]), [
      [0, 'git', 'get_diff', 'allowed', 'ok'],
      [2, 'review', 'post_comment', 'denied', 'denied'],
    ]);
    assert.equal(rows[1].reason, 'the tool server answered 403: token is for "review", not "git"');
    assert.ok((rows[1].durationMs ?? -1) >= 0);
  } finally {
    await misrouted.close();
  }
});
