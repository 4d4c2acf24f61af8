/**
 * Any MCP server is a tool: the reference `@modelcontextprotocol/server-everything`
 * runs as a real external process (Streamable HTTP, stateful sessions, bound to
 * 127.0.0.1) and a function declares it by URL (BATON_TOOL_EVERYTHING_URL). It does
 * not check Baton's tokens, so the gateway's scope is what limits the function: a
 * declared tool runs and is audited, an undeclared one (`get-env`, which would hand
 * the server's environment to the model) is refused and audited.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { asc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { defineAgent, done, next } from '../../runtime/define.ts';
import { registryOf } from '../../runtime/functions.ts';
import { toolCalls } from '../../schema/tables.ts';
import { listen } from '../../tools/lib/server.ts';
import { type TestPlatform, startTestPlatform, trigger, waitForRun } from '../helpers/platform.ts';
import { type Child, spawnNode } from '../helpers/spawn.ts';

const everything = defineAgent({
  name: 'everything-agent',
  input: v.object({ message: v.string() }),
  tools: { everything: ['echo', 'get-sum'] },
  start: 'echo',
  steps: {
    echo: async (ctx) => next('sum', { echo: await ctx.tool('everything.echo', { message: ctx.input.message }) }),
    sum: async (ctx) => next('snoop', { sum: await ctx.tool('everything.get-sum', { a: 2, b: 40 }) }),
    snoop: async (ctx) => {
      try {
        await ctx.tool('everything.get-env', {});
        return done({ ...ctx.state, snooped: true });
      } catch (err) {
        return done({ ...ctx.state, snooped: false, refused: (err as { code?: string }).code });
      }
    },
  },
});

let server: Child;
let proxy: { url: string; close: () => Promise<void> };
const authorizations: Array<string | null> = [];
const methods: string[] = [];

before(async () => {
  server = spawnNode(['--import', './test/helpers/loopback-only.ts', 'node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'streamableHttp'], { PORT: '0' });
  const [, address, port] = await server.waitFor(/loopback-only: listening on (\S+):(\d+)/);
  assert.equal(address, '127.0.0.1', 'the external server listens on loopback only');
  // A transparent proxy in front of it records what the gateway sends (the Authorization header).
  const app = new Hono();
  app.all('*', async (c) => {
    authorizations.push(c.req.header('authorization') ?? null);
    methods.push(c.req.method);
    const headers = new Headers(c.req.raw.headers);
    for (const h of ['host', 'connection', 'content-length']) headers.delete(h);
    const body = ['GET', 'HEAD'].includes(c.req.method) ? undefined : await c.req.arrayBuffer();
    const url = new URL(c.req.url);
    return fetch(`http://127.0.0.1:${port}${url.pathname}${url.search}`, { method: c.req.method, headers, body });
  });
  proxy = await listen(app, 0, '127.0.0.1');
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

async function runOn(env: Record<string, string>) {
  const t: TestPlatform = await startTestPlatform({ llm: 'offline', tools: false, functions: registryOf(everything), env: { BATON_TOOL_EVERYTHING_URL: `${proxy.url}/mcp`, ...env } });
  try {
    const id = await trigger(t.api, 'everything-agent', { message: 'hello from a step' });
    const { run } = await waitForRun(t.p, id);
    const audit = await t.p.db.select().from(toolCalls).where(eq(toolCalls.runId, id)).orderBy(asc(toolCalls.id));
    return { run, audit };
  } finally {
    await t.close();
  }
}

test('a declared server-everything tool runs from a step and is audited; an undeclared one is refused', async () => {
  authorizations.length = 0;
  methods.length = 0;
  const { run, audit } = await runOn({});
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const out = run.output as { echo: unknown; sum: unknown; snooped: boolean; refused: string };
  assert.match(JSON.stringify(out.echo), /Echo: hello from a step/);
  assert.match(JSON.stringify(out.sum), /42/);
  assert.equal(out.snooped, false);
  assert.equal(out.refused, 'tool_denied');
  assert.deepEqual(
    audit.map((c) => [c.seq, c.server, c.tool, c.decision, c.outcome]),
    [
      [0, 'everything', 'echo', 'allowed', 'ok'],
      [1, 'everything', 'get-sum', 'allowed', 'ok'],
      [2, 'everything', 'get-env', 'denied', 'denied'],
    ],
  );
  assert.ok(audit.slice(0, 2).every((c) => typeof c.durationMs === 'number' && c.durationMs >= 0));
  // The gateway sent its (harmless, audience-bound) capability token; the server ignored it.
  assert.ok(authorizations.length > 0);
  assert.ok(authorizations.every((a) => /^Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(a ?? '')), 'a JWT');
  // Each call's session on this stateful server was ended, not left to pile up.
  assert.equal(methods.filter((m) => m === 'DELETE').length, 2);
});

test('BATON_TOOL_EVERYTHING_TOKEN=off withholds the token from that server; the call still works and is audited', async () => {
  authorizations.length = 0;
  const { run, audit } = await runOn({ BATON_TOOL_EVERYTHING_TOKEN: 'off' });
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.equal(audit.filter((c) => c.decision === 'allowed' && c.outcome === 'ok').length, 2);
  assert.ok(authorizations.length > 0);
  assert.deepEqual([...new Set(authorizations)], [null]);
});
