/**
 * Restate: its server (the binary inside the @restatedev/restate-server npm package,
 * run from node_modules; nothing is downloaded) on random loopback ports with a data
 * directory of its own, and a service whose handler makes 10 `ctx.run` steps, served
 * by the SDK over HTTP/2 from this process. The invoker runs at most Baton's
 * concurrency (32) invocations at once. A run has finished when the ingress answers
 * the call. The server's start-up check for a newer version on GitHub is pointed at a
 * closed local port (HTTPS_PROXY), so it fails at once and nothing leaves 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as restate from '@restatedev/restate-sdk';
import { measure } from './harness.ts';

const require = createRequire(import.meta.url);

const chain = restate.service({
  name: 'chain',
  handlers: {
    run: async (ctx: restate.Context, steps: number) => {
      let count = 0;
      for (let i = 0; i < steps; i++) count = await ctx.run(`step${i}`, async () => count + 1);
      return count;
    },
  },
});

function startServer(dir: string, concurrency: number): Promise<{ child: ChildProcess; ingress: string; admin: string }> {
  const binary = require.resolve(`@restatedev/restate-server-${os.platform()}-${os.arch()}/bin/restate-server`);
  const config = path.join(dir, 'restate.toml');
  fs.writeFileSync(
    config,
    ['disable-telemetry = true', 'log-format = "compact"', 'log-disable-ansi-codes = true', 'log-filter = "warn,restate=info"', '[worker.invoker]', `concurrent-invocations-limit = ${concurrency}`, ''].join('\n'),
  );
  const child = spawn(
    binary,
    ['--no-logo', '--config-file', config, '--base-dir', path.join(dir, 'data'), '--listen-mode', 'tcp', '--bind-ip', '127.0.0.1', '--use-random-ports', 'true'],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '127.0.0.1,localhost' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    const ports: Record<string, string> = {};
    let log = '';
    const timer = setTimeout(() => reject(new Error(`restate-server not ready in 60 s:\n${log.slice(-2000)}`)), 60_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      for (const m of log.matchAll(/server_name="?([a-z-]+)"?.*?server\.port="?(\d+)/g)) ports[m[1]] = m[2];
      if (ports['http-ingress-server'] && ports['admin-api-server']) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        resolve({ child, ingress: `http://127.0.0.1:${ports['http-ingress-server']}`, admin: `http://127.0.0.1:${ports['admin-api-server']}` });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`restate-server exited (${code}):\n${log.slice(-2000)}`)));
  });
}

await measure(async (e) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-restate-'));
  const endpoint = http2.createServer(restate.endpoint().bind(chain).http2Handler());
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  const server = await startServer(dir, e.concurrency);
  const stop = async () => {
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    endpoint.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${server.admin}/deployments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ uri: `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}` }),
      }).catch((err: Error) => err);
      if (!(res instanceof Error) && res.ok) break;
      if (attempt > 100) throw new Error(`could not register the service: ${res instanceof Error ? res.message : `${res.status} ${await res.text()}`}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    async run(_id, steps) {
      const res = await fetch(`${server.ingress}/chain/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(steps) });
      const body = await res.text();
      if (!res.ok || Number(body) !== steps) throw new Error(`restate answered ${res.status}: ${body.slice(0, 200)}`);
    },
    close: stop,
  };
});
