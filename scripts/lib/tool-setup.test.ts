import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../runtime/config.ts';
import { registryOf } from '../../runtime/functions.ts';
import { defineAgent, done } from '../../runtime/define.ts';
import * as v from 'valibot';
import { writeRecord } from './local-processes.ts';
import { liveToolUrls, toolProblems } from './tool-setup.ts';

test('tool URLs: the environment first, then a running `baton tools`, looked up at each call', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-tool-urls-'));
  try {
    const urls = liveToolUrls(loadConfig({ BATON_DATA_DIR: dir, BATON_TOOL_GIT_URL: 'http://env-git/mcp' }));
    assert.equal(urls.git, 'http://env-git/mcp');
    assert.equal(urls.review, undefined);
    assert.equal(urls.constructor, undefined, 'plain data: no inherited properties');
    // `baton tools` starts after the worker: found at the next lookup, the environment still wins.
    const forget = writeRecord(dir, 'tools.json', { pid: process.pid, urls: { git: 'http://local-git/mcp', review: 'http://local-review/mcp' } });
    assert.equal(urls.review, 'http://local-review/mcp');
    assert.equal(urls.git, 'http://env-git/mcp');
    assert.ok(Object.hasOwn(urls, 'review') && 'review' in urls);
    assert.deepEqual(Object.keys(urls).sort(), ['git', 'review']);
    forget();
    assert.equal(urls.review, undefined, 'gone with its record');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('toolProblems names each missing URL and a missing signing key, and nothing when all is set', () => {
  const agent = defineAgent({ name: 'a', input: v.object({}), tools: { git: ['get_diff'], 'my-tool': ['x'] }, start: 's', steps: { s: () => done() } });
  const plain = defineAgent({ name: 'b', input: v.object({}), start: 's', steps: { s: () => done() } });
  const problems = toolProblems(registryOf(agent, plain), { git: 'http://g/mcp' }, false);
  assert.equal(problems.length, 2);
  assert.match(problems[0], /^function a calls tool servers with no URL: my-tool \(set BATON_TOOL_MY_TOOL_URL\)/);
  assert.match(problems[1], /tool calls of a will be refused/);
  assert.deepEqual(toolProblems(registryOf(agent, plain), { git: 'g', 'my-tool': 'm' }, true), []);
});
