/**
 * Structured logs on stderr, so stdout stays free for command output: JSON lines
 * (for log collectors) unless stderr is a terminal, where they are printed for people
 * (pino-pretty: time, level, message, fields). BATON_LOG_FORMAT=json|pretty decides
 * instead. pino-pretty is an optional dependency, loaded only for a terminal; without
 * it, logs stay JSON.
 */
import { createRequire } from 'node:module';
import pino from 'pino';

export type Logger = pino.Logger;
export type LogFormat = 'json' | 'pretty' | 'auto';

type Pretty = (opts: Record<string, unknown>) => pino.DestinationStream;

function loadPretty(): Pretty | null {
  try {
    return createRequire(import.meta.url)('pino-pretty') as Pretty;
  } catch {
    return null;
  }
}

export function createLogger(level: string, opts: { name?: string; format?: LogFormat } = {}): Logger {
  const options = { name: opts.name ?? 'baton', level, base: { pid: process.pid } };
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY) ? loadPretty() : null;
  if (pretty) {
    return pino(options, pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  return pino(options, pino.destination(2));
}
