/**
 * An idempotency key names one call with one set of arguments. The gateway sends the
 * digest of the arguments with `run_id:seq`; a tool server that sees a key again with
 * other arguments (a step whose code is not deterministic, or a forged repeat) refuses
 * with `idempotency_conflict` instead of silently answering with the first call's
 * result. The step fails without retrying (a retry cannot help), and the audit says why.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { toolCalls } from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

const agent = defineAgent({ name: 'idle', input: v.object({}), tools: { review: ['post_comment'] }, start: 's', steps: { s: () => done() } });
let t: TestPlatform;

before(async () => {
  t = await startTestPlatform({ llm: 'offline', worker: false, functions: registryOf(agent) });
});
after(() => t.close());

const call = (runId: string, args: Record<string, unknown>) =>
  t.p.tools.call({
    runId,
    seq: 4,
    attempt: 1,
    function: 'idle',
    tenant: 'default',
    scopes: agent.tools,
    name: 'review.post_comment',
    args,
    abortSignal: new AbortController().signal,
    deadline: Date.now() + 10_000,
  });

test('the same run_id:seq with other arguments is refused with idempotency_conflict, not answered with the first result', async () => {
  const runId = await trigger(t.api, 'idle', {});
  const first = (await call(runId, { repo: 'acme/shop', pr: 1, body: 'first' })) as { created: boolean; comment: { id: number } };
  assert.equal(first.created, true);
  const again = (await call(runId, { repo: 'acme/shop', pr: 1, body: 'first' })) as { created: boolean; comment: { id: number } };
  assert.deepEqual([again.created, again.comment.id], [false, first.comment.id], 'the same call again is the same result');

  await assert.rejects(call(runId, { repo: 'acme/shop', pr: 1, body: 'second thoughts' }), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'idempotency_conflict');
    assert.equal(err.retryable, false);
    assert.match(err.message, /review\.post_comment: idempotency_conflict: key \S+:4 was used for arguments sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}/);
    return true;
  });
  const comments = await t.tools?.reviews.list({ repo: 'acme/shop', pr: 1 });
  assert.deepEqual(comments?.map((c) => c.body), ['first'], 'nothing was posted for the conflicting call');
  const rows = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, runId)).orderBy(asc(toolCalls.id));
  assert.deepEqual(rows.map((r) => [r.decision, r.outcome]), [['allowed', 'ok'], ['allowed', 'ok'], ['allowed', 'error']]);
  assert.match(rows[2].error ?? '', /^idempotency_conflict: /);
  assert.notEqual(rows[2].argsDigest, rows[0].argsDigest);
});
