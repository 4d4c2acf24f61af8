/**
 * Preload (`node --import ./test/helpers/loopback-only.ts server.js`) for third-party
 * servers that listen on every interface and cannot be told otherwise (the reference
 * `server-everything` calls `app.listen(PORT)`): every TCP listen is pinned to
 * 127.0.0.1, and the address actually bound is printed on stderr so the test learns
 * the port (PORT=0 picks a free one).
 */
import net from 'node:net';

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function pinnedListen(this: net.Server, ...args: unknown[]) {
  const callback = args.find((a) => typeof a === 'function');
  const first = args[0];
  let options: net.ListenOptions;
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) options = { port: Number(first) };
  else if (first && typeof first === 'object' && !('path' in first) && !('fd' in first) && !('_handle' in first)) options = { ...(first as net.ListenOptions) };
  else return listen.apply(this, args as Parameters<typeof listen>);
  this.once('listening', () => {
    const bound = this.address() as net.AddressInfo;
    process.stderr.write(`loopback-only: listening on ${bound.address}:${bound.port}\n`);
  });
  return listen.call(this, { ...options, host: '127.0.0.1' }, callback as () => void);
} as typeof listen;
