import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonErrorOffset, parseJson } from './json-error.ts';

test('jsonErrorOffset finds the first byte that cannot belong to JSON', () => {
  const cases: Array<[string, number]> = [
    ['{"repo": }', 9],
    ['{"repo": "a", "pr": 7,}', 22],
    ['{\n  "pr": 7\n  "repo": "x"\n}', 14],
    ['[1, 2', 5],
    ["{'a': 1}", 1],
    ['"tab\there"', 4],
    ['{"a": 1} x', 9],
    ['01', 1],
    ['"\\q"', 2],
    ['', 0],
  ];
  for (const [text, offset] of cases) {
    assert.throws(() => JSON.parse(text), SyntaxError, text);
    assert.equal(jsonErrorOffset(text), offset, text);
  }
  for (const text of ['{"a":[1,-2.5e3,true,false,null,"\\u00e9\\n"]}', ' 7 ', '"x"', '[]', '{}']) {
    assert.doesNotThrow(() => JSON.parse(text));
    assert.equal(jsonErrorOffset(text), -1, text);
  }
});

test('parseJson names line, column and what it found', () => {
  assert.throws(() => parseJson('{\n  "pr": 7\n  "repo": "x"\n}'), /^SyntaxError: line 3, column 3 \(position 14\): found "\\"repo\\": \\"x\\"\\n"$/);
  assert.throws(() => parseJson('{"repo": '), /line 1, column 10 \(position 9\): the text ends/);
  assert.deepEqual(parseJson('{"pr": 7}'), { pr: 7 });
});
