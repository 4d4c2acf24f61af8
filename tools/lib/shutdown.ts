/**
 * Serves a tool server until SIGTERM (or SIGINT), then stops the way Kubernetes
 * expects: take no new connection, let the calls in flight finish (a comment being
 * posted, a diff being read) for up to BATON_TOOL_DRAIN_MS (default 20 s), then exit:
 * 0 when everything finished, 1 when calls had to be cut. Without this a server dies
 * at once on SIGTERM mid-call (or, as PID 1 without an init, ignores it until the
 * kubelet's SIGKILL). The image runs every process under tini, which forwards signals.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { stopTracing } from './tracing.ts';

export const DEFAULT_DRAIN_MS = 20_000;

export interface ServeOptions {
  name: string;
  port: number;
  host: string;
  drainMs?: number;
  /** For tests: what to do instead of process.exit. */
  exit?: (code: number) => void;
}

/** BATON_TOOL_DRAIN_MS, or the default. */
export function drainMsFrom(env: NodeJS.ProcessEnv = process.env): number {
  const ms = Number(env.BATON_TOOL_DRAIN_MS ?? DEFAULT_DRAIN_MS);
  if (!Number.isInteger(ms) || ms < 0) throw new Error('BATON_TOOL_DRAIN_MS must be a whole number of milliseconds');
  return ms;
}

/** Listens, resolves with the URL, and drains then exits on the first SIGTERM or SIGINT. */
export function serveTool(app: Hono, opts: ServeOptions): Promise<{ url: string }> {
  const drainMs = opts.drainMs ?? drainMsFrom();
  const exitNow = opts.exit ?? ((code: number) => process.exit(code));
  // Spans still buffered go out first (bounded: a collector that is down does not hold the exit).
  const exit = (code: number) => void stopTracing(2000).finally(() => exitNow(code));
  return new Promise((resolve, reject) => {
    let inflight = 0;
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }, (info) => {
      resolve({ url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${info.port}` });
    }) as Server;
    server.once('error', reject);
    server.on('request', (_req, res) => {
      inflight++;
      res.once('close', () => inflight--);
    });
    const stop = (signal: NodeJS.Signals) => {
      process.stderr.write(`${JSON.stringify({ server: opts.name, stopping: true, signal, inflight, drainMs })}\n`);
      // Connections idle between requests are closed now, busy ones once their response is out.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const deadline = setTimeout(() => {
        process.stderr.write(`${JSON.stringify({ server: opts.name, stopped: true, cut: inflight })}\n`);
        server.closeAllConnections();
        exit(1);
      }, drainMs);
      server.close(() => {
        clearInterval(idle);
        clearTimeout(deadline);
        process.stderr.write(`${JSON.stringify({ server: opts.name, stopped: true, cut: 0 })}\n`);
        exit(0);
      });
      server.closeIdleConnections();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
