/**
 * The credential of `POST /invoke` (Knative mode): a secret that only dispatchers and
 * function pods hold (BATON_INVOKE_TOKEN, from the `<name>-invoke` Secret), sent as
 * `Authorization: Bearer <token>`. Without it, anything that can reach a function pod
 * could run, fail or stall any tenant's step by naming a run id. Compared in constant
 * time; a function with no token configured refuses every invocation (fail closed).
 */
import crypto from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { BatonError } from '../errors.ts';

/** Constant-time equality of two secrets of any length (both are hashed to 32 bytes first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

export function invokeCredential(token: string | null | undefined): MiddlewareHandler {
  return async function invokeCredential(c, next) {
    if (!token) throw new BatonError('unauthorized', 'this function has no BATON_INVOKE_TOKEN configured: it refuses every invocation');
    const given = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (!given || !sameSecret(given, token)) throw new BatonError('unauthorized', 'send the dispatcher credential: Authorization: Bearer <BATON_INVOKE_TOKEN>');
    return next();
  };
}

/** The header a dispatcher sends. */
export const invokeHeaders = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
