import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ListedTool, ToolGateway, ToolListRequest } from './gateway.ts';
import { clearToolListCache, listDeclaredTools } from './tool-list-cache.ts';

function fakeGateway(fail = false) {
  const asked: string[] = [];
  const gateway: ToolGateway = {
    call: async () => null,
    list: async (req) => {
      asked.push(req.server ?? '*');
      if (fail) throw new Error('down');
      // Listed in the server's order, which is not the declaration's.
      return [...(req.scopes[req.server ?? ''] ?? [])].reverse().map<ListedTool>((tool) => ({
        server: req.server ?? '',
        tool,
        name: `${req.server}.${tool}`,
        description: tool,
        inputSchema: { type: 'object' },
        outputSchema: undefined,
      }));
    },
  };
  return { gateway, asked };
}

const req = (fn = 'f'): ToolListRequest => ({
  runId: 'r',
  seq: 0,
  function: fn,
  tenant: 't',
  scopes: { git: ['list_changed_files', 'get_diff'], review: ['post_comment'], empty: [] },
  abortSignal: new AbortController().signal,
  deadline: Date.now() + 10_000,
});

test('lists each declared server once per TTL, in declaration order; a failure is not cached', async () => {
  clearToolListCache();
  const { gateway, asked } = fakeGateway();
  const first = await listDeclaredTools(gateway, req());
  assert.deepEqual(first.map((t) => t.name), ['git.list_changed_files', 'git.get_diff', 'review.post_comment']);
  await listDeclaredTools(gateway, req());
  assert.deepEqual(asked.sort(), ['git', 'review'], 'the second listing came from the cache; a server with no declared tool is never asked');
  await listDeclaredTools(gateway, req(), 0);
  assert.equal(asked.length, 4, 'past the TTL it asks again');
  await listDeclaredTools(gateway, req('other'));
  assert.equal(asked.length, 6, 'another function (another scope) has its own entry');

  clearToolListCache();
  const down = fakeGateway(true);
  await assert.rejects(listDeclaredTools(down.gateway, req()), /down/);
  await assert.rejects(listDeclaredTools(down.gateway, req()), /down/);
  assert.equal(down.asked.length, 4, 'asked again after a failure');
});

test('each gateway (each platform, with its own servers) has its own cache', async () => {
  clearToolListCache();
  const a = fakeGateway();
  const b = fakeGateway();
  await listDeclaredTools(a.gateway, req());
  await listDeclaredTools(b.gateway, req());
  assert.deepEqual([a.asked.length, b.asked.length], [2, 2]);
});
