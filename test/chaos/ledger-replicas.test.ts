/**
 * Side effects exactly once with any number of tool-server replicas. Two github tool
 * server processes share one ledger database (BATON_TOOL_LEDGER_URL) and one GitHub
 * stub that is slow to write and slow to list a new comment (as GitHub may be). The
 * same key is sent to both at once, twice each, for many keys: exactly one POST
 * reaches GitHub per key, and every answer carries that one comment. Then the
 * recovery paths: a reservation whose holder died after posting is resolved by the
 * marker search (no second POST); one whose holder died before posting is posted
 * once; one whose holder is alive is waited for. The ledger's rows are the audit.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { type MintClaims, generateKeyPair, loadPrivateKey, mintCapability } from '../../tools/lib/capability.ts';
import { digestArgs } from '../../tools/lib/digest.ts';
import { createBareDatabase } from '../helpers/db.ts';
import { documentedSql } from '../helpers/docs.ts';
import { startGitHubStub, type GitHubStub } from '../helpers/github-stub.ts';
import { answerText, rpc, toolsCall } from '../helpers/mcp.ts';
import { runAlone } from '../helpers/processes.ts';
import { type Child, spawnNode } from '../helpers/spawn.ts';

runAlone();

const GITHUB_TOKEN = 'ghp_ledger_replicas_0123456789';
const KEYS = 30;
const RUN = '0190f5d2-0000-7000-8000-00000000ab01';
const keys = generateKeyPair();
const signer = loadPrivateKey(keys.privateKeyPem);
let stub: GitHubStub;
let ledgerDb: { url: string; drop(): Promise<void> };
let ledgerUrl: string;
const replicas: Child[] = [];
const urls: string[] = [];
let sql: pg.Pool;

before(async () => {
  // Writes take a while and the list shows a new comment only later: the window in
  // which "list, look for the marker, post" posts twice from two replicas.
  stub = await startGitHubStub({ token: GITHUB_TOKEN, postDelayMs: 150, listLagMs: 2000 });
  ledgerDb = await createBareDatabase('baton_t');
  ledgerUrl = `${ledgerDb.url}?schema=tool_ledger`;
  sql = new pg.Pool({ connectionString: ledgerDb.url, max: 2 });
  // An idle client the server drops (another test's terminated backends, a restart) must not end the file as an uncaught error.
  sql.on('error', () => {});
  for (const name of ['a', 'b']) {
    const child = spawnNode(['tools/github/server.ts'], {
      PORT: '0',
      HOST: '127.0.0.1',
      BATON_TOOL_PUBLIC_KEY: Buffer.from(keys.publicKeyPem).toString('base64'),
      BATON_TOOL_POLICY: '{"tenants":{"acme":{"repos":["acme/*"]}}}',
      BATON_TOOL_LEDGER_URL: ledgerUrl,
      // Long enough that a loaded machine's pauses never lapse a live holder's lease (a takeover would be legitimate, and post again while the list lags).
      BATON_TOOL_LEDGER_LEASE_MS: '5000',
      BATON_TOOL_LEDGER_WAIT_MS: '15000',
      GITHUB_TOKEN,
      GITHUB_API_URL: stub.url,
    });
    replicas.push(child);
    const line = (await child.waitFor(/^\{.*"server":"github".*\}$/m))[0];
    const started = JSON.parse(line) as { url: string; ledger: string };
    assert.equal(started.ledger, 'postgres', `replica ${name} uses the shared ledger`);
    urls.push(started.url);
  }
});

after(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  await sql?.end();
  await stub?.close();
  await ledgerDb?.drop();
});

const tokenFor = (seq: number, args: Record<string, unknown>, over: Partial<MintClaims> = {}) =>
  mintCapability(signer, {
    use: 'call',
    aud: 'github',
    run: RUN,
    seq,
    fn: 'gh-review',
    tenant: 'acme',
    tool: 'post_comment',
    args: digestArgs(args),
    exp: Math.floor(Date.now() / 1000) + 120,
    ...over,
  } as MintClaims);

type Posted = { created: boolean; comment: { id: number; body: string } };

async function post(url: string, seq: number, args: Record<string, unknown>) {
  const a = await rpc(url, toolsCall('post_comment', args, `${RUN}:${seq}`), { token: await tokenFor(seq, args) });
  assert.equal(a.status, 200, answerText(a));
  assert.equal(a.body?.result?.isError, undefined, answerText(a));
  return a.body?.result?.structuredContent as Posted;
}

const postsFor = (pr: number) => stub.requests.filter((r) => r.method === 'POST' && r.path === `/repos/acme/shop/issues/${pr}/comments`).length;

test('two replicas, the same key sent to both at once, many times: exactly one POST per key', async () => {
  for (let batch = 0; batch < KEYS; batch += 10) {
    await Promise.all(
      Array.from({ length: Math.min(10, KEYS - batch) }, async (_, i) => {
        const seq = batch + i;
        const args = { repo: 'acme/shop', pr: 100 + seq, body: `review ${seq}` };
        // Both replicas, twice each, at the same moment.
        const answers = await Promise.all([urls[0], urls[1], urls[0], urls[1]].map((url) => post(url, seq, args)));
        assert.equal(answers.filter((a) => a.created).length, 1, `key ${seq}: one answer created the comment`);
        assert.equal(new Set(answers.map((a) => a.comment.id)).size, 1, `key ${seq}: every answer is that comment`);
      }),
    );
  }
  const perKey = Array.from({ length: KEYS }, (_, seq) => postsFor(100 + seq));
  assert.deepEqual(perKey, Array(KEYS).fill(1), 'one POST reached GitHub per key');
});

test('the ledger is the audit: one row per side effect with its key, tool, argument digest, outcome and times', async () => {
  const { rows } = await sql.query(
    `select key, server, tool, args_digest, tenant, outcome, deliveries, attempts, reserved_at, finished_at, result
       from tool_ledger.tool_ledger where key like $1 order by reserved_at`,
    [`${RUN}:%`],
  );
  const batch = rows.filter((r) => Number(String(r.key).split(':')[1]) < KEYS);
  assert.equal(batch.length, KEYS);
  for (const r of batch) {
    const seq = Number(String(r.key).split(':')[1]);
    assert.equal(r.server, 'github');
    assert.equal(r.tool, 'post_comment');
    assert.equal(r.args_digest, digestArgs({ repo: 'acme/shop', pr: 100 + seq, body: `review ${seq}` }));
    assert.equal(r.tenant, 'acme');
    assert.equal(r.outcome, 'ok');
    assert.equal(r.deliveries, 4, 'four calls arrived for the key');
    assert.equal(r.attempts, 1, 'one holder did the work');
    assert.ok(r.reserved_at instanceof Date && r.finished_at instanceof Date && r.finished_at >= r.reserved_at);
    assert.match(JSON.stringify(r.result), /"id":\d+/);
  }
});

/** A reservation left by a replica that died: its lease ran out `agoMs` ago (or runs out in -agoMs). */
async function deadReservation(seq: number, args: Record<string, unknown>, agoMs: number) {
  await sql.query(
    `insert into tool_ledger.tool_ledger (key, server, tool, args_digest, tenant, outcome, holder, lease_until)
     values ($1, 'github', 'post_comment', $2, 'acme', 'pending', 'dead-replica:1:x', now() - make_interval(secs => $3::float8 / 1000))`,
    [`${RUN}:${seq}`, digestArgs(args), agoMs],
  );
}

test('a holder that died after posting: the next replica finds its marker and does not post again', async () => {
  const seq = 500;
  const args = { repo: 'acme/shop', pr: 500, body: 'posted, then the replica died' };
  // The dead replica's POST went through (with the step's marker); the list shows it by now.
  stub.comments.set('acme/shop#500', [
    { id: 9500, html_url: 'https://github.example/acme/shop/pull/500#issuecomment-9500', body: `${args.body}\n\n<!-- baton:${RUN}:${seq} -->`, user: { login: 'baton-bot' }, created_at: new Date(Date.now() - 60_000).toISOString() },
  ]);
  await deadReservation(seq, args, 1000);
  const answer = await post(urls[1], seq, args);
  assert.equal(answer.created, false);
  assert.equal(answer.comment.id, 9500);
  assert.equal(postsFor(500), 0, 'no second POST');
  const { rows } = await sql.query(`select outcome, attempts from tool_ledger.tool_ledger where key = $1`, [`${RUN}:${seq}`]);
  assert.deepEqual(rows, [{ outcome: 'ok', attempts: 2 }]);
});

test('a holder that died before posting: the next replica posts, once', async () => {
  const seq = 501;
  const args = { repo: 'acme/shop', pr: 501, body: 'the replica died before posting' };
  await deadReservation(seq, args, 1000);
  const answers = await Promise.all([post(urls[0], seq, args), post(urls[1], seq, args)]);
  assert.equal(answers.filter((a) => a.created).length, 1);
  assert.equal(postsFor(501), 1);
});

test('a live holder is waited for, not overtaken; when its lease runs out the work is taken over', async () => {
  const seq = 502;
  const args = { repo: 'acme/shop', pr: 502, body: 'held by a slow replica' };
  await deadReservation(seq, args, -1200); // its lease runs for 1.2 s more, and nobody renews it
  const answer = await post(urls[0], seq, args);
  assert.equal(answer.created, true);
  assert.equal(postsFor(502), 1);
  const { rows } = await sql.query(`select outcome, attempts, holder from tool_ledger.tool_ledger where key = $1`, [`${RUN}:${seq}`]);
  assert.equal(rows[0].outcome, 'ok');
  assert.notEqual(rows[0].holder, 'dead-replica:1:x');
});

test('the same key with other arguments is idempotency_conflict, at every replica', async () => {
  const seq = 3;
  const other = { repo: 'acme/shop', pr: 103, body: 'a different review under the same key' };
  for (const url of urls) {
    const a = await rpc(url, toolsCall('post_comment', other, `${RUN}:${seq}`), { token: await tokenFor(seq, other) });
    assert.equal(a.status, 200);
    assert.equal(a.body?.result?.isError, true);
    assert.match(answerText(a), /^idempotency_conflict: key \S+:3 was used for arguments sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}/);
  }
  assert.equal(postsFor(103), 1, 'nothing more was posted');
});

test('the review server keeps its comments in the ledger database: two replicas, one comment per key, both list it', async () => {
  const reviewers: Child[] = [];
  try {
    const at: string[] = [];
    for (let i = 0; i < 2; i++) {
      const child = spawnNode(['tools/review/server.ts'], {
        PORT: '0',
        HOST: '127.0.0.1',
        BATON_TOOL_PUBLIC_KEY: Buffer.from(keys.publicKeyPem).toString('base64'),
        BATON_TOOL_POLICY: '{"tenants":{"acme":{"repos":["acme/*"]}}}',
        BATON_TOOL_LEDGER_URL: ledgerUrl,
      });
      reviewers.push(child);
      const started = JSON.parse((await child.waitFor(/^\{.*"server":"review".*\}$/m))[0]) as { url: string; ledger: string };
      assert.equal(started.ledger, 'postgres');
      at.push(started.url);
    }
    const reviewToken = (seq: number, tool: string, args: Record<string, unknown>) =>
      tokenFor(seq, args, { aud: 'review', fn: 'pr-review', tool });
    for (let seq = 700; seq < 710; seq++) {
      const args = { repo: 'acme/shop', pr: seq, body: `review ${seq}` };
      const answers = await Promise.all(
        [at[0], at[1], at[0], at[1]].map(async (url) => {
          const a = await rpc(url, toolsCall('post_comment', args, `${RUN}:${seq}`), { token: await reviewToken(seq, 'post_comment', args) });
          assert.equal(a.body?.result?.isError, undefined, answerText(a));
          return a.body?.result?.structuredContent as { created: boolean; comment: { id: number; deliveries: number } };
        }),
      );
      assert.equal(answers.filter((a) => a.created).length, 1, `key ${seq}`);
      assert.equal(new Set(answers.map((a) => a.comment.id)).size, 1);
    }
    const { rows } = await sql.query(`select idempotency_key, count(*)::int as n, max(deliveries) as deliveries from tool_ledger.review_comments group by 1 order by 1`);
    assert.equal(rows.length, 10);
    assert.ok(rows.every((r) => r.n === 1 && r.deliveries === 4), JSON.stringify(rows));
    // Either replica lists what the other stored.
    for (const url of at) {
      const listed = await rpc(url, toolsCall('list_comments', { repo: 'acme/shop', pr: 705 }), { token: await reviewToken(1, 'list_comments', { repo: 'acme/shop', pr: 705 }) });
      assert.deepEqual((listed.body?.result?.structuredContent as { comments: Array<{ body: string }> }).comments.map((c) => c.body), ['review 705']);
    }
  } finally {
    await Promise.all(reviewers.map((r) => r.stop()));
  }
});

test("the README's ledger queries run as written and find these side effects", async () => {
  const client = new pg.Client({ connectionString: ledgerDb.url });
  await client.connect();
  try {
    // psql "$BATON_TOOL_LEDGER_URL" with the schema this test gave the ledger.
    await client.query('set search_path to tool_ledger');
    const ofRun = await client.query(documentedSql('README.md', 'Side effects of one run, in order'));
    assert.ok(ofRun.rows.length >= KEYS, `${ofRun.rows.length} rows`);
    assert.ok(ofRun.rows.every((r) => String(r.key).startsWith(`${RUN}:`)));
    const repeated = await client.query(documentedSql('README.md', 'Side effects taken over or repeated, last day'));
    assert.ok(repeated.rows.some((r) => r.attempts > 1), 'the takeovers are listed');
    const pending = await client.query(documentedSql('README.md', 'Reservations still pending'));
    assert.deepEqual(pending.rows, [], 'nothing is left pending');
  } finally {
    await client.end();
  }
});
