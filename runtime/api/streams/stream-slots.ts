/**
 * At most BATON_MAX_STREAMS_PER_TENANT event streams open at once per tenant, across
 * every API replica: each stream holds a leased slot in Redis (limits.ts `acquireSlot`).
 * This process renews the leases of all its streams in one batch per tenant every
 * RENEW_MS, so a replica that dies frees its tenants' places within LEASE_MS.
 *
 * If Redis does not answer, the stream is let through (and a warning logged): streams
 * still end after BATON_STREAM_MAX_S, so nothing is held for long.
 */
import crypto from 'node:crypto';
import type { Platform } from '../../platform.ts';

const LEASE_MS = 30_000;
const RENEW_MS = 10_000;

export interface StreamSlot {
  release(): void;
}

export interface StreamSlots {
  /** A slot for one more stream of `tenant`, or null when the tenant holds all of its slots. */
  acquire(tenant: string): Promise<StreamSlot | null>;
  /** Streams open in this process. */
  readonly open: number;
  close(): void;
}

export function createStreamSlots(p: Platform): StreamSlots {
  const limit = p.config.limits.streamsPerTenant;
  const held = new Map<string, Set<string>>();
  let open = 0;
  let renewer: NodeJS.Timeout | null = null;
  const key = (tenant: string) => `streams:${tenant}`;

  const renew = () => {
    for (const [tenant, ids] of held) {
      p.limits.renewSlots(key(tenant), [...ids], LEASE_MS).catch((err: Error) => p.log.warn({ err: err.message }, 'could not renew event stream slots'));
    }
  };

  return {
    get open() {
      return open;
    },
    async acquire(tenant) {
      const id = crypto.randomUUID();
      const ok = await p.limits.acquireSlot(key(tenant), id, limit, LEASE_MS).catch((err: Error) => {
        p.log.warn({ err: err.message }, 'event stream limit unavailable; letting the stream through');
        return true;
      });
      if (!ok) return null;
      const ids = held.get(tenant) ?? new Set<string>();
      held.set(tenant, ids);
      ids.add(id);
      open++;
      if (!renewer) {
        renewer = setInterval(renew, RENEW_MS);
        renewer.unref();
      }
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          open--;
          ids.delete(id);
          if (ids.size === 0) held.delete(tenant);
          if (held.size === 0 && renewer) {
            clearInterval(renewer);
            renewer = null;
          }
          p.limits.releaseSlot(key(tenant), id).catch(() => {});
        },
      };
    },
    close() {
      if (renewer) clearInterval(renewer);
      renewer = null;
    },
  };
}
