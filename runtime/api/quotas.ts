/**
 * Per-tenant run quotas (README "Limits"): at most BATON_TENANT_RUNS_PER_MIN new runs
 * in any minute and BATON_TENANT_MAX_ACTIVE_RUNS live runs; beyond either, 429
 * `quota_exceeded` naming the quota, with Retry-After. Counted in Redis, so every API
 * replica sees the same numbers. The live-run count comes from PostgreSQL at most every
 * FRESH_MS (one replica recounts, under a lock) plus the admissions since.
 *
 * Quotas apply to tenants of API keys. With BATON_AUTH=off there is one tenant, the
 * operator's own (local development, benchmarks), and no quota.
 *
 * If Redis does not answer, runs are admitted (and a warning logged): a run is durable
 * in PostgreSQL and the sweeper wakes it, so an outage of the counters should not stop
 * intake.
 */
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { countLiveRuns } from '../store/quotas.ts';

const FRESH_MS = 2000;

const QUOTA_NAMES = {
  runs_per_minute: { env: 'BATON_TENANT_RUNS_PER_MIN', what: 'new runs per minute' },
  active_runs: { env: 'BATON_TENANT_MAX_ACTIVE_RUNS', what: 'live runs' },
} as const;

/** Admits one new (or revived) run of `tenant`, or throws 429; call the answer once the run's row is written. */
export async function admitRun(p: Platform, tenant: string): Promise<() => void> {
  const none = () => {};
  if (!p.config.auth) return none;
  const { runsPerMinute, activeRunsPerTenant } = p.config.limits;
  const opts = { perMinute: runsPerMinute, maxActive: activeRunsPerTenant, freshMs: FRESH_MS };
  const recount = (snapshot: number) =>
    countLiveRuns(p.db, tenant)
      .then((n) => p.limits.setActive(tenant, n, snapshot))
      .catch((err: Error) => p.log.warn({ err: err.message, tenant }, 'could not recount live runs'));
  try {
    let a = await p.limits.admitRun(tenant, opts);
    if (!a.ok && a.quota === 'unknown') {
      await p.limits.setActive(tenant, await p.withDb(() => countLiveRuns(p.db, tenant), 3000), 0);
      a = await p.limits.admitRun(tenant, opts);
    }
    if (a.ok) return a.recount ? () => void recount(a.recount!.snapshot) : none;
    if (a.quota === 'unknown') return none;
    if (a.recount) void recount(a.recount.snapshot);
    const q = QUOTA_NAMES[a.quota];
    const limit = a.quota === 'runs_per_minute' ? runsPerMinute : activeRunsPerTenant;
    throw new BatonError('quota_exceeded', `tenant "${tenant}" is at its quota of ${limit} ${q.what} (${q.env}); retry later`, {
      details: { quota: a.quota, limit, env: q.env },
      retryAfterMs: a.retryAfterMs,
    });
  } catch (err) {
    if (err instanceof BatonError) throw err;
    p.log.warn({ err: (err as Error).message, tenant }, 'run quotas unavailable; admitting the run');
    return none;
  }
}
