/**
 * Attack 2, a stolen capability token. Real tokens are taken off the wire from two
 * runs of the demo agent and misused: on another repository or pull request (another
 * call than the one it was minted for), for the other run's idempotency key, after
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
import { digestArgs } from '../../tools/lib/digest.ts';
import { answerText, rpc, toolsCall, toolsList } from '../helpers/mcp.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { makeRepo, startToolServers, type ToolServers } from '../helpers/tool-servers.ts';

const STEP_TIMEOUT_MS = 20_000;
let dir: string;
let tools: ToolServers;
let t: TestPlatform;
let runA: string;
let runB: string;

interface Claims {
  use: 'call';
  sub: string;
  run: string;
  seq: number;
  aud: string;
  fn: string;
  tenant: string;
  tool: string;
  args: string;
  iat: number;
  exp: number;
}
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Claims;

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

/** The arguments the gateway really sent with a token. */
const argsOf = (token: string) => {
  const seen = tools.seen.find((s) => s.token === token && s.method === 'tools/call');
  assert.ok(seen?.args, 'the call the token came with');
  return seen.args;
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

test('real tokens are narrow: one server, one tool, the exact arguments, the tenant, one step, short-lived', () => {
  const token = tokenOf('review', 'post_comment', runA);
  const c = claimsOf(token);
  assert.equal(c.use, 'call');
  assert.equal(c.aud, 'review');
  assert.equal(c.tool, 'post_comment');
  assert.equal(c.args, digestArgs(argsOf(token)), 'the digest of the arguments sent');
  assert.equal(c.tenant, 'default');
  assert.equal(c.seq, 2);
  assert.equal(c.sub, `${runA}:2`);
  assert.equal(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).alg, 'EdDSA');
  // Checked on arrival: it needs to live until the call is sent, not for the whole step.
  assert.ok(c.exp - c.iat <= 91, `lifetime ${c.exp - c.iat} s`);
  assert.ok(c.exp - c.iat >= 30, 'long enough to reach the server');
});

test('a token taken off the wire cannot post on another repository or pull request (403 token_args_mismatch)', async () => {
  const stolen = tokenOf('review', 'post_comment', runA);
  const original = argsOf(stolen);
  const before = (await tools.review.list({})).length;
  for (const args of [
    { ...original, repo: 'victim/secrets', pr: 1 },
    { ...original, repo: 'victim/secrets', pr: 2 },
    { ...original, pr: 2 },
    { ...original, body: 'pwned' },
  ]) {
    for (const key of [undefined, `${runA}:2`]) {
      const a = await rpc(tools.urls.review, toolsCall('post_comment', args, key), { token: stolen });
      assert.equal(a.status, 403, JSON.stringify(args));
      assert.match(answerText(a), /^token_args_mismatch: /);
    }
  }
  assert.equal((await tools.review.list({ repo: 'victim/secrets' })).length, 0);
  assert.equal((await tools.review.list({})).length, before, 'no new comment anywhere');
});

test("run A's token cannot act under run B's idempotency key", async () => {
  const stolen = tokenOf('review', 'post_comment', runA);
  const original = argsOf(stolen);
  const before = (await tools.review.list({})).length;
  const forB = await rpc(tools.urls.review, toolsCall('post_comment', original, `${runB}:2`), { token: stolen });
  assert.equal(forB.status, 403);
  assert.match(answerText(forB), /the idempotency key does not belong to this token/);
  // Replayed exactly, it finds only A's own comment again.
  const replay = await rpc(tools.urls.review, toolsCall('post_comment', original), { token: stolen });
  assert.equal(replay.status, 200);
  const structured = replay.body?.result?.structuredContent as { created: boolean; comment: { pr: number } };
  assert.equal(structured.created, false);
  assert.equal(structured.comment.pr, 1, "it is run A's own comment");
  assert.equal((await tools.review.list({})).length, before, 'no new comment');
});

test('a tampered token fails: another tool, other arguments, another run or tenant, later expiry, another audience', async () => {
  const stolen = tokenOf('review', 'post_comment', runA);
  const wipe = { repo: 'acme/shop' };
  const cases: Array<[string, string, unknown]> = [
    ['tool switched to delete_all', tamper(stolen, (c) => ((c.tool = 'delete_all'), (c.args = digestArgs(wipe)))), toolsCall('delete_all', wipe)],
    ['run switched to B', tamper(stolen, (c) => ((c.run = runB), (c.sub = `${runB}:2`))), toolsCall('post_comment', argsOf(stolen), `${runB}:2`)],
    ['tenant switched', tamper(stolen, (c) => (c.tenant = 'victim')), toolsCall('post_comment', argsOf(stolen))],
    ['expiry pushed a day out', tamper(stolen, (c) => (c.exp = Number(c.exp) + 86_400)), toolsCall('post_comment', argsOf(stolen))],
    ['audience switched to git', tamper(stolen, (c) => (c.aud = 'git')), toolsList()],
  ];
  for (const [what, token, body] of cases) {
    const url = what.includes('git') ? tools.urls.git : tools.urls.review;
    const a = await rpc(url, body, { token });
    assert.equal(a.status, 401, what);
    assert.match(answerText(a), /bad signature/, what);
  }
  const forged = await mintCapability(loadPrivateKey(generateKeyPair().privateKeyPem), { ...claimsOf(stolen), tool: 'delete_all', args: digestArgs(wipe) });
  assert.equal((await rpc(tools.urls.review, toolsCall('delete_all', wipe), { token: forged })).status, 401, 'signed by a key of our own');
  assert.equal((await rpc(tools.urls.review, toolsCall('delete_all', wipe))).status, 401, 'no token at all');
  assert.equal((await tools.review.list({ repo: 'acme/shop' })).length, 2, 'both reviews are still there');
});

test('a token is refused by every server but its own', async () => {
  const review = tokenOf('review', 'post_comment', runA);
  const git = tokenOf('git', 'get_diff', runA);
  const atGit = await rpc(tools.urls.git, toolsCall('get_diff', argsOf(git)), { token: review });
  assert.equal(atGit.status, 403);
  assert.match(answerText(atGit), /token is for "review", not "git"/);
  const atReview = await rpc(tools.urls.review, toolsCall('post_comment', argsOf(review)), { token: git });
  assert.equal(atReview.status, 403);
  assert.match(answerText(atReview), /token is for "git", not "review"/);
});

test('a replayed token fails once it has expired', async () => {
  // Real tokens live for a minute and a half at most; this one is minted the same way with
  // one to two seconds of life (whole seconds: enough for the first call however near the end
  // of a second it is minted), so the test need not wait long.
  const exp = Math.ceil(Date.now() / 1000) + 1;
  const token = await mintCapability(loadPrivateKey(t.keys.privateKeyPem), {
    use: 'call',
    aud: 'git',
    run: runA,
    seq: 0,
    fn: 'pr-review',
    tenant: 'default',
    tool: 'get_diff',
    args: digestArgs({ range: 'HEAD' }),
    exp,
  });
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
