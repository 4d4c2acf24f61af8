import assert from 'node:assert/strict';
import { test } from 'node:test';
import { duration, json } from './format.ts';

test('json escapes markup in keys and values and colours the tokens', () => {
  const out = String(json({ '<b>': '</pre><script>alert(1)</script>', n: 2, ok: true, none: null }));
  assert.doesNotMatch(out, /<script>|<b>|<\/pre><script/);
  assert.match(out, /<span class="j-key">&#34;&#60;b&#62;&#34;<\/span>:/);
  assert.match(out, /<span class="j-num">2<\/span>/);
  assert.match(out, /<span class="j-lit">true<\/span>/);
});

test('a string with line breaks is shown broken (↵), an escaped backslash before n is not', () => {
  const out = String(json({ diff: 'line one\nline two', path: 'C:\\new' }));
  assert.match(out, /line one↵\nline two/);
  assert.match(out, /C:\\\\new/);
});

test('durations read at every scale', () => {
  assert.deepEqual([duration(850), duration(1234), duration(61_000), duration(7_380_000), duration(null)], ['850 ms', '1.23 s', '1 m 01 s', '2 h 03 m', '—']);
});
