import pino from 'pino';

/** Structured logs go to stderr as JSON lines, so stdout stays free for command output. */
export type Logger = pino.Logger;

export function createLogger(level: string, name = 'baton'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
