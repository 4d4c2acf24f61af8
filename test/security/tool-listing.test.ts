/**
 * Tool discovery for agents that let the model choose: the gateway lists a function's
 * declared tools (MCP tools/list) with a listing token, which names the declared
 * tools and grants no call. Only declared tools come back, with their schemas;
 * undeclared servers are refused before anything is sent.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as v from 'valibot';
import { defineAgent, done } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { type TestPlatform, startTestPlatform, trigger } from '../helpers/platform.ts';

const agent = defineAgent({
  name: 'lister',
  input: v.object({}),
  tools: { git: ['get_diff'], review: ['post_comment', 'list_comments'] },
  start: 's',
  steps: { s: () => done() },
});
let t: TestPlatform;
let runId: string;

before(async () => {
  t = await startTestPlatform({ llm: 'offline', worker: false, functions: registryOf(agent) });
  runId = await trigger(t.api, 'lister', {});
});
after(() => t.close());

const list = (over: { server?: string; scopes?: Record<string, string[]> } = {}) =>
  t.p.tools.list({
    runId,
    seq: 0,
    function: 'lister',
    tenant: 'default',
    scopes: over.scopes ?? agent.tools,
    ...(over.server ? { server: over.server } : {}),
    abortSignal: new AbortController().signal,
    deadline: Date.now() + 10_000,
  });

test('the gateway lists exactly the declared tools of every declared server, with their schemas', async () => {
  const tools = await list();
  assert.deepEqual(tools.map((x) => x.name).sort(), ['git.get_diff', 'review.list_comments', 'review.post_comment']);
  const post = tools.find((x) => x.name === 'review.post_comment');
  assert.equal(post?.server, 'review');
  assert.equal(post?.tool, 'post_comment');
  assert.match(post?.description ?? '', /Posts a review comment/);
  assert.deepEqual(Object.keys((post?.inputSchema as { properties: object }).properties).sort(), ['body', 'line', 'path', 'pr', 'repo']);
  assert.ok(!tools.some((x) => x.tool === 'delete_all' || x.tool === 'list_changed_files'), 'the servers have more tools; none undeclared is listed');
  assert.deepEqual((await list({ server: 'git' })).map((x) => x.name), ['git.get_diff']);
});

test('listing a server the function did not declare, or a prototype key, is refused before anything is sent', async () => {
  for (const server of ['github', 'constructor', '__proto__']) {
    await assert.rejects(list({ server }), (err: Error & { code?: string }) => err.code === 'tool_denied' && /declared no tool/.test(err.message), server);
  }
});
