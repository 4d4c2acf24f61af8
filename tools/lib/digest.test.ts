import assert from 'node:assert/strict';
import { test } from 'node:test';
import { digestArgs } from './digest.ts';

test('equal arguments have equal digests whatever the key order; any change changes it', () => {
  const a = digestArgs({ repo: 'acme/shop', pr: 7, body: 'x', nested: { b: 1, a: [1, { d: 2, c: 3 }] } });
  assert.match(a, /^sha256:[0-9a-f]{64}$/);
  assert.equal(digestArgs({ nested: { a: [1, { c: 3, d: 2 }], b: 1 }, body: 'x', pr: 7, repo: 'acme/shop' }), a);
  assert.notEqual(digestArgs({ repo: 'acme/shop', pr: 8, body: 'x', nested: { b: 1, a: [1, { d: 2, c: 3 }] } }), a);
  assert.notEqual(digestArgs({ repo: 'acme/shop', pr: '7', body: 'x', nested: { b: 1, a: [1, { d: 2, c: 3 }] } }), a);
  assert.equal(digestArgs(undefined), digestArgs({}));
});

test('the digest is of what goes on the wire: a Date as its JSON string, undefined members dropped', () => {
  const when = new Date('2026-11-29T03:00:00.000Z');
  assert.equal(digestArgs({ at: when, gone: undefined }), digestArgs(JSON.parse(JSON.stringify({ at: when }))));
  assert.equal(digestArgs({ at: when }), digestArgs({ at: '2026-11-29T03:00:00.000Z' }));
});
