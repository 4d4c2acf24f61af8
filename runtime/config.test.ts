import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from './config.ts';

test('defaults follow the documented contract', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  // DESIGN: set so 1,000 LLM-waiting steps fit one process; the pool stays small (no connection is held across a wait).
  assert.equal(c.concurrency, 1000);
  assert.equal(c.dbPoolSize, 16);
  assert.equal(c.auth, true);
  assert.equal(c.leaseMs, 4000);
  assert.ok(c.heartbeatMs < c.leaseMs);
  assert.equal(c.redisPrefix, 'baton:');
  assert.equal(c.databaseUrl, undefined);
  assert.equal(c.maxClaims, 5, 'BATON_MAX_CLAIMS (DESIGN contracts)');
  assert.equal(c.testHooks, false, 'test hooks are off unless BATON_TEST_HOOKS=1');
  assert.deepEqual(c.metrics, { port: 9464, host: '127.0.0.1', enabled: true, portGiven: false });
  assert.equal(c.functionsDir, path.resolve('functions'));
  assert.equal(c.heapGrowthPercent, 50, 'a worker bounds its heap growth by default (scripts/lib/heap-growth.ts)');
  assert.equal(loadConfig({ BATON_HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent, 0);
});

test('metrics: a port, an interface, or off', () => {
  assert.deepEqual(loadConfig({ BATON_METRICS_PORT: '9100', BATON_METRICS_HOST: '0.0.0.0' }).metrics, { port: 9100, host: '0.0.0.0', enabled: true, portGiven: true });
  assert.equal(loadConfig({ BATON_METRICS_PORT: '0' }).metrics.port, 0);
  assert.equal(loadConfig({ BATON_METRICS_PORT: 'off' }).metrics.enabled, false);
  assert.throws(() => loadConfig({ BATON_METRICS_PORT: 'api' }), /BATON_METRICS_PORT/);
  assert.throws(() => loadConfig({ BATON_METRICS_PORT: '70000' }), /BATON_METRICS_PORT/);
});

test('reads values, tool URLs and the revision', () => {
  const c = loadConfig({ PORT: '9000', BATON_AUTH: 'off', BATON_CONCURRENCY: '4', BATON_TOOL_GIT_URL: 'http://g/mcp', BATON_TOOL_MY_TOOL_URL: 'http://m/mcp', K_REVISION: 'pr-review-00002' });
  assert.equal(c.port, 9000);
  assert.equal(c.auth, false);
  assert.equal(c.concurrency, 4);
  assert.equal(c.dbPoolSize, 4, 'a small worker keeps a small pool');
  assert.deepEqual(c.toolUrls, { git: 'http://g/mcp', 'my-tool': 'http://m/mcp' });
  assert.equal(c.revision, 'pr-review-00002');
});

test('a bad value names its variable', () => {
  assert.throws(() => loadConfig({ BATON_CONCURRENCY: 'many' }), /BATON_CONCURRENCY: must be a whole number/);
  assert.throws(() => loadConfig({ BATON_CONCURRENCY: '0' }), /BATON_CONCURRENCY/);
  assert.throws(() => loadConfig({ BATON_AUTH: 'maybe' }), /BATON_AUTH/);
  assert.throws(() => loadConfig({ BATON_LEASE_MS: '1000', BATON_HEARTBEAT_MS: '2000' }), /BATON_HEARTBEAT_MS/);
  assert.throws(() => loadConfig({ BATON_MAX_CLAIMS: '0' }), /BATON_MAX_CLAIMS/);
});
