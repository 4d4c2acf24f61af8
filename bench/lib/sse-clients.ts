/**
 * The clients of bench/sse.ts in a process of their own, so that reading thousands of
 * streams does not slow the bench's own measurements (autocannon runs in the parent).
 * Driven over IPC: `open` (a list of streams) → `opened` (their HTTP statuses);
 * `count` → `events` (events received so far); `close` → exits.
 */
import http from 'node:http';

type Want = { url: string; key: string };
type Message = { type: 'open'; streams: Want[] } | { type: 'count' } | { type: 'close' };

const requests: http.ClientRequest[] = [];
let events = 0;

function open(w: Want): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(w.url, { agent: false, headers: { authorization: `Bearer ${w.key}`, accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        events += chunk.split('event: ').length - 1;
      });
      res.on('error', () => {});
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    requests.push(req);
  });
}

process.on('message', async (m: Message) => {
  if (m.type === 'open') {
    const statuses: number[] = [];
    for (let i = 0; i < m.streams.length; i += 200) statuses.push(...(await Promise.all(m.streams.slice(i, i + 200).map(open))));
    process.send?.({ type: 'opened', statuses });
  } else if (m.type === 'count') {
    process.send?.({ type: 'events', events });
  } else {
    for (const r of requests) r.destroy();
    process.exit(0);
  }
});
