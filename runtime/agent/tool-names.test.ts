import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayToolName, modelToolName } from './tool-names.ts';

test('server.tool ⇄ server_tool: the first underscore splits, as server names have none', () => {
  assert.equal(modelToolName('git', 'get_diff'), 'git_get_diff');
  assert.equal(gatewayToolName('git_get_diff'), 'git.get_diff');
  assert.equal(gatewayToolName('my-server_list_all_things'), 'my-server.list_all_things');
  assert.equal(gatewayToolName('delete_all'), 'delete.all', 'an invented name still maps; the gateway refuses it');
  assert.equal(gatewayToolName('nounderscore'), 'nounderscore');
  assert.equal(gatewayToolName('_x'), '_x');
});
