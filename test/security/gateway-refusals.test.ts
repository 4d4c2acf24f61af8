/**
 * The gateway refuses, before sending anything, every call it cannot make safely,
 * and each refusal is a `denied` row with its reason.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { toolCalls } from '../../schema/tables.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

const agent = defineAgent({ name: 'idle', input: v.object({}), start: 's', steps: { s: () => done() } });
let t: TestPlatform;
let runId: string;

before(async () => {
  t = await startTestPlatform({
    llm: 'offline',
    tools: false,
    worker: false,
    functions: registryOf(agent),
    env: { BATON_TOOL_BROKEN_URL: 'not a url', BATON_TOOL_REVIEW_URL: 'http://127.0.0.1:9/mcp' },
  });
  runId = await trigger(t.api, 'idle', {});
});
after(() => t.close());

test('undeclared, unnamed, unconfigured and misconfigured calls are refused and audited', async () => {
  const scopes = { review: ['post_comment'], broken: ['x'], nowhere: ['y'] };
  const cases: Array<[string, RegExp]> = [
    ['review.delete_all', /did not declare review\.delete_all/],
    ['delete_all', /a tool is named "server\.tool"/],
    ['.x', /a tool is named "server\.tool"/],
    ['nowhere.y', /no URL is configured for tool server "nowhere" \(set BATON_TOOL_NOWHERE_URL\)/],
    ['broken.x', /the URL configured for tool server "broken" is not a URL/],
  ];
  for (const [name, reason] of cases) {
    await assert.rejects(
      t.p.tools.call({ runId, seq: 0, attempt: 1, function: 'idle', tenant: 'default', scopes, name, args: { secret: 'hunter2' }, abortSignal: new AbortController().signal, deadline: Date.now() + 5000 }),
      (err: Error & { code?: string }) => err.code === 'tool_denied' && reason.test(err.message),
      name,
    );
  }
  const rows = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, runId)).orderBy(asc(toolCalls.id));
  assert.equal(rows.length, cases.length);
  for (const [i, row] of rows.entries()) {
    assert.equal(row.decision, 'denied');
    assert.equal(row.outcome, 'denied');
    assert.match(row.reason ?? '', cases[i][1]);
    assert.ok(!JSON.stringify(row).includes('hunter2'), 'arguments are kept only as a digest');
  }
});

test('tool names that are prototype keys (constructor.x, __proto__.y, toString.z) are denied and audited, never a crash', async () => {
  const id = await trigger(t.api, 'idle', {});
  const scopes = { review: ['post_comment'] };
  const names = ['constructor.x', '__proto__.y', 'toString.z', 'hasOwnProperty.call', 'review.constructor', 'review.__proto__', 'valueOf.valueOf'];
  for (const [seq, name] of names.entries()) {
    await assert.rejects(
      t.p.tools.call({ runId: id, seq, attempt: 1, function: 'idle', tenant: 'default', scopes, name, args: {}, abortSignal: new AbortController().signal, deadline: Date.now() + 5000 }),
      (err: Error & { code?: string }) => err.code === 'tool_denied' && /did not declare/.test(err.message),
      name,
    );
  }
  const rows = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(asc(toolCalls.id));
  assert.deepEqual(
    rows.map((r) => [`${r.server}.${r.tool}`, r.decision, r.outcome]),
    names.map((n) => [n, 'denied', 'denied']),
  );
  for (const [i, row] of rows.entries()) assert.equal(row.reason, `function "idle" did not declare ${names[i]}`);
  // A scope object built from JSON, whose prototype keys are its own data, is plain data too.
  const parsed = JSON.parse('{"__proto__": ["y"], "review": ["post_comment"]}') as Record<string, string[]>;
  await assert.rejects(
    t.p.tools.call({ runId: id, seq: 99, attempt: 1, function: 'idle', tenant: 'default', scopes: parsed, name: '__proto__.y', args: {}, abortSignal: new AbortController().signal, deadline: Date.now() + 5000 }),
    (err: Error & { code?: string }) => err.code === 'tool_denied' && /no URL is configured for tool server "__proto__"/.test(err.message),
  );
});
