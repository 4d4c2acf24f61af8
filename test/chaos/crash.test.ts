/**
 * Crash mid-step: 50 reviews on 3 worker processes while workers keep dying (more are
 * started while the kills go on, so there is always a step in flight to interrupt).
 * Every ~300 ms the test SIGKILLs a random worker and starts a replacement; the
 * replacements also arm fault points in turn (BATON_FAULTS with BATON_TEST_HOOKS=1), so some die by their
 * own hand exactly during a call, after the tool call and before the commit, or
 * after the commit and before the publish. The kills go on until there have been at
 * least 20 and every one of those moments has been hit; then the runs must finish.
 * Checked: every run succeeded; its steps are contiguous with no seq twice; its final
 * checkpoint holds the full conversation; the review tool stored each run's
 * idempotency key exactly once (however many times the post arrived).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { query } from '../../runtime/db/connect.ts';
import { verifyReviewRuns, waitForRuns } from '../helpers/chaos.ts';
import { startTestPlatform, trigger } from '../helpers/platform.ts';
import { type BatonProcess, spawnBaton, stopAll, teardown, runAlone } from '../helpers/processes.ts';

const RUNS = 50;
/** More runs are started while the kills go on, up to this many in all. */
const MAX_RUNS = 200;
const WORKERS = 3;
/** Kills that interrupt a step: fault-point deaths, and the test's SIGKILLs (only of workers holding a lease). */
const MIN_KILLS = 20;
const KILL_EVERY_MS = 300;
const CHAOS_LIMIT_MS = 150_000;
/**
 * Every other replacement arms one fault point, in turn: an armed worker dies the
 * first time one of its steps reaches that moment. The test's own kills spare armed
 * workers, so each gets there.
 */
const FAULTS = ['after-commit=1', '', 'before-commit=1', '', 'after-call=1', '', 'during-call=1', ''];
const MOMENTS = ['during-call', 'after-call', 'before-commit', 'after-commit'];

runAlone();

test('crash mid-step: workers SIGKILLed at every moment of a step, nothing lost, no side effect twice', { timeout: 300_000 }, async (tc) => {
  const defer = teardown(tc);
  const t = await startTestPlatform({ worker: false, llm: { delayMs: [200, 800] } });
  defer(() => t.close());
  // This test kills the workers that hold steps, again and again: the same step may die with its
  // worker more often than a crash loop takes (BATON_MAX_CLAIMS, proven in chaos/crash-loop), and must still finish.
  const env = { ...t.env, BATON_LEASE_MS: '1000', BATON_MAX_CLAIMS: '1000' };

  const all: BatonProcess[] = [];
  defer(() => stopAll(all));
  const ready = new Map<BatonProcess, string>(); // process → consumer name
  const armed = new Set<BatonProcess>();
  let spawned = 0;
  let chaos = true;
  const faultHits = new Map<string, number>();
  let externalKills = 0;
  let killsDuringLlm = 0;

  let stopping = false;
  defer(() => {
    stopping = true; // runs first: no replacement for the workers stopped below
  });
  async function spawnWorker(): Promise<void> {
    const n = ++spawned;
    const faults = chaos && n > WORKERS ? FAULTS[(n - WORKERS - 1) % FAULTS.length] : '';
    const w = spawnBaton('worker', { ...env, BATON_FAULTS: faults, BATON_TEST_HOOKS: '1' }, `crash${n}`);
    all.push(w);
    if (faults) armed.add(w);
    void w.exited.then(() => {
      ready.delete(w);
      const fault = w.lines.map((l) => /^\{"fault":"([a-z-]+)"/.exec(l)?.[1]).find(Boolean);
      if (fault) faultHits.set(fault, (faultHits.get(fault) ?? 0) + 1);
      if (!stopping) void spawnWorker(); // keep the pool at strength
    });
    const banner = await w.waitForLine(/^baton worker /, 60_000).catch(() => null);
    if (banner && w.alive) ready.set(w, /^baton worker (\S+):/.exec(banner)?.[1] ?? '');
  }

  await Promise.all(Array.from({ length: WORKERS }, () => spawnWorker()));
  const started = Date.now();
  const ids = await Promise.all(Array.from({ length: RUNS }, (_, i) => trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: i + 1 })));

  const kills = () => externalKills + [...faultHits.values()].reduce((a, b) => a + b, 0);
  const momentsHit = () => MOMENTS.every((m) => (faultHits.get(m) ?? 0) > 0) && killsDuringLlm > 0;
  while (kills() < MIN_KILLS || !momentsHit()) {
    if (Date.now() - started >= CHAOS_LIMIT_MS) {
      const runs = await query<{ status: string; n: number }>(t.p.db, sql`select status::text as status, count(*)::int as n from runs group by 1`);
      assert.fail(
        `chaos phase over its time limit: ${kills()} kills, faults ${JSON.stringify(Object.fromEntries(faultHits))}, during LLM ${killsDuringLlm}; ` +
          `runs ${JSON.stringify(Object.fromEntries(runs.map((r) => [r.status, r.n])))}, workers alive ${[...ready.keys()].filter((w) => w.alive).length}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
    // Runs that finish before the kills are done leave nothing to kill: keep work in flight (bounded).
    const [live] = await query<{ n: number }>(t.p.db, sql`select count(*)::int as n from runs where status in ('queued', 'running', 'waiting')`);
    if (live.n < RUNS / 5 && ids.length < MAX_RUNS) {
      const more = await Promise.all(Array.from({ length: RUNS / 5 }, (_, i) => trigger(t.api, 'pr-review', { repo: 'acme/shop', pr: ids.length + i + 1 })));
      ids.push(...more);
    }
    // The victim: a random unarmed worker that holds a lease (is mid-step) right now.
    // Killing only mid-step workers also keeps the runs from finishing before the
    // kills are done: they cannot advance while every worker holding them dies.
    const holding = await query<{ consumer: string; steps: number; llm: number }>(
      t.p.db,
      sql`select split_part(lease_owner, '/', 1) as consumer, count(*)::int as steps,
            (count(*) filter (where next_step = 'review'))::int as llm
          from runs where status = 'running' and lease_owner is not null and lease_expires_at > now()
          group by 1`,
    );
    const byConsumer = new Map(holding.map((h) => [h.consumer, h]));
    const candidates = [...ready.entries()].filter(([w, consumer]) => w.alive && !armed.has(w) && byConsumer.has(consumer));
    // Never the last worker standing: replacements take seconds to start on a loaded machine,
    // and with none left the runs cannot get past their first step between kills.
    if (candidates.length === 0 || [...ready.keys()].filter((w) => w.alive).length < 2) continue;
    // Every other kill prefers a worker in an LLM call, if any: on a loaded machine the quick
    // steps around it are where most workers are at any moment.
    const inCall = candidates.filter(([, c]) => (byConsumer.get(c)?.llm ?? 0) > 0);
    const pool = inCall.length && externalKills % 2 === 0 ? inCall : candidates;
    const [victim, consumer] = pool[Math.floor(Math.random() * pool.length)];
    const inLlm = (byConsumer.get(consumer)?.llm ?? 0) > 0 && (t.llm?.inflight ?? 0) > 0;
    victim.signal('SIGKILL');
    externalKills++;
    if (inLlm) killsDuringLlm++;
  }
  chaos = false;
  const chaosMs = Date.now() - started;

  // From here replacements arm no faults; armed workers still alive may yet die, and are replaced.
  await waitForRuns(t, ids, 90_000);
  const totalMs = Date.now() - started;
  const report = await verifyReviewRuns(t, ids);
  const llmCalls = t.llm?.calls.length ?? 0;
  assert.ok(kills() >= MIN_KILLS);
  console.log(
    `crash: ${ids.length} runs, ${WORKERS} workers, ${kills()} mid-step kills survived in ${(chaosMs / 1000).toFixed(1)} s ` +
      `(${externalKills} SIGKILLs by the test, ${killsDuringLlm} of them during an LLM call; by fault point: ${MOMENTS.map((m) => `${m} ${faultHits.get(m) ?? 0}`).join(', ')}); ` +
      `${spawned} worker processes; all ${ids.length} succeeded in ${(totalMs / 1000).toFixed(1)} s; steps contiguous; ` +
      `${report.comments} comments for ${ids.length} keys, ${report.deliveries} deliveries (${report.deliveries - report.comments} repeats deduplicated), duplicates ${report.duplicates}; ` +
      `${llmCalls - ids.length} LLM calls and ${report.reexecutedToolCalls} tool steps re-run after crashes`,
  );
});
