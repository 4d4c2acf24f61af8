/**
 * Shared limits of the API (README "Limits"): counters that every API replica sees,
 * kept in Redis (redis-limits.ts, atomic Lua scripts on Redis's clock) or, in the
 * embedded mode's single process, in memory (this file). Three shapes:
 *
 * - a sliding-window counter (`hit`): at most `limit` events in any `windowMs`,
 *   approximated from the current and previous fixed windows, weighted by overlap
 *   (repeated 401s from one address);
 * - run admission (`admitRun`): a tenant's runs per minute (the same window) and its
 *   live runs, counted in PostgreSQL now and then (`setActive`) plus the admissions
 *   since that count; both checked and counted in one step, so two replicas cannot
 *   both take the last place;
 * - leased slots (`acquireSlot`): at most `limit` holders at once (event streams); a
 *   holder renews its lease, and a replica that died loses its slots when they expire.
 */

export type Verdict = { ok: true } | { ok: false; retryAfterMs: number };

export type RunAdmission =
  | { ok: true; recount: { snapshot: number } | null }
  | { ok: false; quota: 'runs_per_minute' | 'active_runs'; retryAfterMs: number; recount: { snapshot: number } | null }
  /** The live-run count is unknown here: count, `setActive`, and ask again. */
  | { ok: false; quota: 'unknown' };

export interface Limits {
  readonly kind: 'redis' | 'memory';
  /** Adds `cost` (default 1) to `key`'s window if the window stays within `limit`; cost 0 asks whether one more would fit. */
  hit(key: string, limit: number, windowMs: number, cost?: number): Promise<Verdict>;
  admitRun(tenant: string, opts: { perMinute: number; maxActive: number; freshMs: number }): Promise<RunAdmission>;
  /** Records a fresh count of live runs; `snapshot` is the admissions that count already includes. */
  setActive(tenant: string, count: number, snapshot: number): Promise<void>;
  acquireSlot(key: string, id: string, limit: number, leaseMs: number): Promise<boolean>;
  renewSlots(key: string, ids: readonly string[], leaseMs: number): Promise<void>;
  releaseSlot(key: string, id: string): Promise<void>;
}

const MINUTE = 60_000;

export function createMemoryLimits(now: () => number = Date.now): Limits {
  const counters = new Map<string, number>();
  const active = new Map<string, { count: number; pending: number; at: number; recounting: number }>();
  const slots = new Map<string, Map<string, number>>();

  const window = (key: string, limit: number, w: number, cost: number): Verdict & { bucket?: string } => {
    const t = now();
    const cur = Math.floor(t / w);
    const c = counters.get(`${key}:${cur}`) ?? 0;
    const p = counters.get(`${key}:${cur - 1}`) ?? 0;
    const elapsed = (t % w) / w;
    if (p * (1 - elapsed) + c + cost > limit) {
      const need = limit - c - cost;
      const retry = need >= 0 && p > 0 ? Math.ceil((1 - need / p - elapsed) * w) : w - (t % w);
      return { ok: false, retryAfterMs: Math.max(1, retry) };
    }
    // Forget windows older than the previous one.
    for (const k of counters.keys()) if (k.startsWith(`${key}:`) && Number(k.slice(key.length + 1)) < cur - 1) counters.delete(k);
    return { ok: true, bucket: `${key}:${cur}` };
  };

  return {
    kind: 'memory',
    async hit(key, limit, windowMs, cost = 1) {
      // cost 0 asks whether one more would fit, without counting it.
      const v = window(key, limit, windowMs, Math.max(cost, 1));
      if (v.ok && cost > 0 && v.bucket) counters.set(v.bucket, (counters.get(v.bucket) ?? 0) + cost);
      return v.ok ? { ok: true } : v;
    },
    async admitRun(tenant, opts) {
      const a = active.get(tenant);
      if (!a) return { ok: false, quota: 'unknown' };
      const v = window(`runs:${tenant}`, opts.perMinute, MINUTE, 1);
      if (!v.ok) return { ok: false, quota: 'runs_per_minute', retryAfterMs: v.retryAfterMs, recount: null };
      let recount: { snapshot: number } | null = null;
      if (now() - a.at > opts.freshMs && now() > a.recounting) {
        a.recounting = now() + 5000;
        recount = { snapshot: a.pending };
      }
      if (a.count + a.pending >= opts.maxActive) return { ok: false, quota: 'active_runs', retryAfterMs: opts.freshMs, recount };
      if (v.bucket) counters.set(v.bucket, (counters.get(v.bucket) ?? 0) + 1);
      a.pending++;
      if (recount) recount.snapshot = a.pending;
      return { ok: true, recount };
    },
    async setActive(tenant, count, snapshot) {
      const a = active.get(tenant);
      active.set(tenant, { count, pending: Math.max(0, (a?.pending ?? 0) - snapshot), at: now(), recounting: 0 });
    },
    async acquireSlot(key, id, limit, leaseMs) {
      const held = slots.get(key) ?? new Map<string, number>();
      slots.set(key, held);
      for (const [k, until] of held) if (until <= now()) held.delete(k);
      if (held.size >= limit) return false;
      held.set(id, now() + leaseMs);
      return true;
    },
    async renewSlots(key, ids, leaseMs) {
      const held = slots.get(key);
      for (const id of ids) if (held?.has(id)) held.set(id, now() + leaseMs);
    },
    async releaseSlot(key, id) {
      slots.get(key)?.delete(id);
    },
  };
}
