/**
 * Serves a Hono app on Node and stops it cleanly: close() stops accepting, then ends
 * idle keep-alive and long-lived (SSE) connections after a short grace.
 */
import { serve } from '@hono/node-server';
import type { Server } from 'node:http';

export interface Served {
  port: number;
  url: string;
  close(graceMs?: number): Promise<void>;
}

export function serveApp(
  app: { fetch: (request: Request) => Response | Promise<Response> },
  port: number,
  hostname: string,
  opts: { what?: string } = {},
): Promise<Served> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname }, (info) => {
      const host = hostname === '0.0.0.0' || hostname === '::' ? '127.0.0.1' : hostname;
      resolve({
        port: info.port,
        url: `http://${host}:${info.port}`,
        close: (graceMs = 2000) =>
          new Promise<void>((done) => {
            const http = server as Server;
            http.close(() => done());
            http.closeIdleConnections?.();
            setTimeout(() => http.closeAllConnections?.(), graceMs).unref();
          }),
      });
    });
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} is in use; set ${opts.what ?? 'PORT'} to another port`) : err);
    });
  });
}

/**
 * Resolves on the first SIGINT or SIGTERM. A repeat within a second is ignored (a
 * terminal's Ctrl-C reaches both npm and us, and npm forwards it again); a later one
 * forces the exit, for when a clean stop takes too long.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let first = 0;
    const on = (signal: NodeJS.Signals) => {
      if (!first) {
        first = Date.now();
        resolve(signal);
      } else if (Date.now() - first > 1000) {
        process.stderr.write(`${signal} again: exiting without a clean stop\n`);
        process.exit(130);
      }
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
