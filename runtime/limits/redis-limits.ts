/**
 * The API's shared limits in Redis (see limits.ts): each check-and-count is one Lua
 * script, atomic and on Redis's clock (`TIME`), so every replica agrees. Keys live
 * under `<prefix>limits:` and expire on their own.
 */
import type { RedisClient } from '../queue/redis.ts';
import type { Limits, RunAdmission, Verdict } from './limits.ts';

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// Sliding window from two fixed windows: count = previous * (1 - elapsed) + current.
// Returns true and the current window's key, or false and the ms until a place frees.
const WINDOW = `
local function window(base, limit, w, cost, now)
  local cur = math.floor(now / w)
  local ck = base .. ':' .. cur
  local c = tonumber(redis.call('GET', ck) or '0')
  local p = tonumber(redis.call('GET', base .. ':' .. (cur - 1)) or '0')
  local elapsed = (now % w) / w
  if p * (1 - elapsed) + c + cost > limit then
    local need = limit - c - cost
    local retry = w - (now % w)
    if need >= 0 and p > 0 then retry = math.ceil(((1 - need / p) - elapsed) * w) end
    if retry < 1 then retry = 1 end
    return false, retry
  end
  return true, ck
end`;

const HIT = `${NOW}${WINDOW}
local w = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
-- cost 0 asks whether one more would fit, without counting it
local ok, r = window(KEYS[1], tonumber(ARGV[1]), w, math.max(cost, 1), now)
if not ok then return {0, r} end
if cost > 0 then
  redis.call('INCRBY', r, cost)
  redis.call('PEXPIRE', r, 2 * w)
end
return {1, 0}`;

// KEYS: runs-per-minute window, live-run hash {count, pending, at}, recount lock.
// Answers {verdict, retryMs, recount, snapshot}: verdict 0 admitted, 1 per minute, 2 live runs, 3 count unknown.
const ADMIT_RUN = `${NOW}${WINDOW}
local a = redis.call('HMGET', KEYS[2], 'count', 'pending', 'at')
if not a[1] then return {3, 0, 0, 0} end
local ok, r = window(KEYS[1], tonumber(ARGV[1]), 60000, 1, now)
if not ok then return {1, r, 0, 0} end
local recount = 0
if now - tonumber(a[3]) > tonumber(ARGV[3]) and redis.call('SET', KEYS[3], '1', 'NX', 'PX', 5000) then recount = 1 end
local pending = tonumber(a[2] or '0')
if tonumber(a[1]) + pending >= tonumber(ARGV[2]) then return {2, tonumber(ARGV[3]), recount, pending} end
redis.call('INCRBY', r, 1)
redis.call('PEXPIRE', r, 120000)
pending = redis.call('HINCRBY', KEYS[2], 'pending', 1)
return {0, 0, recount, pending}`;

const SET_ACTIVE = `${NOW}
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') - tonumber(ARGV[2])
if pending < 0 then pending = 0 end
redis.call('HSET', KEYS[1], 'count', ARGV[1], 'pending', pending, 'at', now)
redis.call('PEXPIRE', KEYS[1], 600000)
redis.call('DEL', KEYS[2])
return 1`;

const ACQUIRE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
return 1`;

const RENEW = `${NOW}
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return 1`;

export function createRedisLimits(opts: { client: RedisClient; prefix: string }): Limits {
  const { client } = opts;
  const base = `${opts.prefix}limits:`;
  const run = async (script: string, keys: string[], args: Array<string | number>) =>
    (await client.eval(script, { keys, arguments: args.map(String) })) as number[];

  return {
    kind: 'redis',
    async hit(key, limit, windowMs, cost = 1): Promise<Verdict> {
      const [ok, retry] = await run(HIT, [`${base}w:${key}`], [limit, windowMs, cost]);
      return ok === 1 ? { ok: true } : { ok: false, retryAfterMs: retry };
    },
    async admitRun(tenant, o): Promise<RunAdmission> {
      const keys = [`${base}w:runs:${tenant}`, `${base}active:${tenant}`, `${base}active:${tenant}:recount`];
      const [verdict, retry, recount, snapshot] = await run(ADMIT_RUN, keys, [o.perMinute, o.maxActive, o.freshMs]);
      const again = recount === 1 ? { snapshot } : null;
      if (verdict === 0) return { ok: true, recount: again };
      if (verdict === 3) return { ok: false, quota: 'unknown' };
      return { ok: false, quota: verdict === 1 ? 'runs_per_minute' : 'active_runs', retryAfterMs: retry, recount: again };
    },
    async setActive(tenant, count, snapshot) {
      await run(SET_ACTIVE, [`${base}active:${tenant}`, `${base}active:${tenant}:recount`], [count, snapshot]);
    },
    async acquireSlot(key, id, limit, leaseMs) {
      const [ok] = [await run(ACQUIRE, [`${base}slots:${key}`], [id, limit, leaseMs])].flat();
      return ok === 1;
    },
    async renewSlots(key, ids, leaseMs) {
      if (ids.length) await run(RENEW, [`${base}slots:${key}`], [leaseMs, ...ids]);
    },
    async releaseSlot(key, id) {
      await client.zRem(`${base}slots:${key}`, id);
    },
  };
}
