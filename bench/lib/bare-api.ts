/**
 * The ceiling for the ingestion part: a bare Hono route on @hono/node-server that reads
 * the JSON body and answers 202 with an id, touching no database and no queue. Run as
 * its own process, like `baton api`; prints "bare api listening on URL" when ready.
 */
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { serveApp, untilSignal } from '../../scripts/lib/serve.ts';

const app = new Hono();
app.post('/v1/functions/:name/runs', async (c) => {
  await c.req.json();
  return c.json({ id: randomUUID(), status: 'queued' }, 202);
});
const stop = untilSignal();
const served = await serveApp(app, 0, '127.0.0.1');
console.error(`bare api listening on ${served.url}`);
await stop;
await served.close(100);
