/**
 * SQLSTATEs the engine reacts to, by name. Transient ones (the server restarting,
 * a dropped connection, a serialization clash) are retried with jittered backoff at
 * the store boundary (runtime/db/retry.ts); everything else surfaces.
 */
export const SQLSTATE = {
  uniqueViolation: '23505',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  tooManyConnections: '53300',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  lockNotAvailable: '55P03',
  /** The database named in the URL does not exist (baton migrate creates it). */
  invalidCatalogName: '3D000',
  duplicateDatabase: '42P04',
} as const;

const TRANSIENT_STATES: ReadonlySet<string> = new Set([
  SQLSTATE.serializationFailure,
  SQLSTATE.deadlockDetected,
  SQLSTATE.tooManyConnections,
  SQLSTATE.adminShutdown,
  SQLSTATE.crashShutdown,
  SQLSTATE.cannotConnectNow,
]);

/** Node socket errors seen while PostgreSQL (or PgBouncer) restarts. */
const TRANSIENT_NODE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

const TRANSIENT_MESSAGES = [
  'Connection terminated',
  'connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'terminating connection',
  'Query read timeout',
];

/** True when retrying the same statement later can succeed (class 08 = connection exception). */
export function isTransientDbError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (TRANSIENT_STATES.has(code) || code.startsWith('08') || TRANSIENT_NODE_CODES.has(code))) {
      return true;
    }
    if (typeof message === 'string' && TRANSIENT_MESSAGES.some((m) => message.includes(m))) return true;
  }
  return false;
}

export function sqlState(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code } = e as { code?: unknown };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
