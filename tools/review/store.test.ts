import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createCommentStore } from './store.ts';

const comment = (key: string, pr: number) => ({ idempotencyKey: key, repo: 'acme/shop', pr, body: `on ${pr}`, path: null, line: null });

test('posts once per key, and a restarted store remembers posts and deletions', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-review-'));
  const file = path.join(dir, 'comments.jsonl');
  try {
    const store = createCommentStore(file);
    assert.equal((await store.post(comment('r:1', 7))).created, true);
    assert.equal((await store.post(comment('r:1', 7))).created, false);
    await store.post(comment('r:2', 8));
    assert.equal(await store.deleteAll({ repo: 'acme/shop', pr: 7 }), 1);
    assert.deepEqual((await store.list({})).map((c) => c.pr), [8]);

    const reopened = createCommentStore(file);
    assert.deepEqual((await reopened.list({})).map((c) => [c.id, c.pr]), [[2, 8]]);
    assert.equal((await reopened.post(comment('r:2', 8))).created, false);
    assert.equal((await reopened.post(comment('r:3', 9))).comment.id, 3, 'ids are not reused after a deletion');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
