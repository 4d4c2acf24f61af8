/**
 * The worker: drains the functions' streams and runs up to `concurrency` steps at
 * once (steps mostly wait on LLMs, so one process runs many). Beside the read loop
 * it runs five small loops:
 *   reclaim — finds messages a dead consumer left pending for longer than a lease, and
 *             takes them over as soon as a slot is free (before any new message);
 *   mover   — promotes delayed messages (backoff, wait timeouts, re-checks) when due;
 *   sweeper — re-publishes live runs that made no progress (Redis lost a wake-up);
 *   housekeeper — re-creates missing consumer groups, trims acked entries, removes
 *             dead consumers;
 *   control — aborts in-flight calls of cancelled runs.
 * stop() drains: no new messages, in-flight steps get `graceMs` to finish, the rest
 * release their leases and are re-published for another worker.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ExecuteOptions, type StepOutcome, executeStep } from '../engine/execute-step.ts';
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { batchTouches } from '../queue/touch-batches.ts';
import type { Delivery, PendingEntry, StepMessage } from '../queue/queue.ts';
import { sweep } from '../store/sweep.ts';

export interface WorkerOptions {
  /** Functions to serve (default: all in the registry). */
  functions?: readonly string[];
  concurrency?: number;
  /** How a delivery is executed (default: in-process; the Knative dispatcher POSTs it instead). */
  execute?: (delivery: Delivery, shutdown: AbortSignal, hooks: Pick<ExecuteOptions, 'onHeartbeat' | 'handOn' | 'firstDelivery'>) => Promise<StepOutcome>;
  /** Re-publish every live run once at start (the embedded mode rebuilds its in-process queue). */
  rebuildAtStart?: boolean;
  onOutcome?: (delivery: Delivery, outcome: StepOutcome) => void;
}

export interface Worker {
  readonly consumer: string;
  readonly active: number;
  start(): Promise<void>;
  /** Drains and stops; resolves when every loop has ended. */
  stop(graceMs?: number): Promise<void>;
}

const MOVER_INTERVAL_MS = 100;
/**
 * How many idle pending messages one reclaim pass looks at per function: a fixed
 * batch, whatever the free slots, so a full worker still finds a dead one's steps.
 */
const RECLAIM_BATCH = 32;

export function createWorker(p: Platform, opts: WorkerOptions = {}): Worker {
  const functions = opts.functions ?? [...p.functions.keys()];
  const consumer = `${p.config.workerName}-${randomUUID().slice(0, 6)}`;
  const concurrency = opts.concurrency ?? p.config.concurrency;
  const shutdown = new AbortController(); // aborts in-flight steps after the grace period
  const stopLoops = new AbortController(); // ends the loops at once
  const active = new Set<Promise<void>>();
  let slotFreed: (() => void) | null = null;
  const loops: Promise<void>[] = [];
  let unsubscribe: (() => Promise<void>) | undefined;
  const log = p.log.child({ worker: consumer });

  // In-process steps touch their stream entry on each lease heartbeat and hand on with
  // one MULTI (XADD next + XACK); a custom executor (the Knative dispatcher) is touched
  // on a timer and acked after it returns.
  const inProcess = opts.execute === undefined;
  const execute =
    opts.execute ??
    ((d: Delivery, stop: AbortSignal, hooks: Pick<ExecuteOptions, 'onHeartbeat' | 'handOn' | 'firstDelivery'>) =>
      // A step's next step runs here at once (claimed by its commit) until the worker stops taking work.
      executeStep(p, d.function, d.message, { worker: consumer, shutdown: stop, continueInProcess: true, draining: stopLoops.signal, ...hooks }));

  async function ack(d: Delivery) {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await p.queue.ack(d);
      } catch {
        await sleep(100 * 2 ** attempt);
      }
    }
    // Left pending: reclaimed later, and then dropped by the claim as stale.
    log.warn({ runId: d.message.runId, seq: d.message.seq }, 'could not ack; the message will be reclaimed');
  }

  // In-process steps are touched from the one lease heartbeat for all of them (engine/heartbeat.ts),
  // so a beat's touches fall in the same turn and go as one XCLAIM per function. A custom
  // executor's deliveries are touched on timers of their own, together only when started together.
  const touchMany = batchTouches(p.queue, consumer);

  // Deliveries this process is running now, by stream entry.
  const running = new Set<string>();
  const entry = (d: { function: string; id: string }) => `${d.function}|${d.id}`;

  /** Runs a delivery; `firstDelivery`: read from the stream now, not taken over from a dead consumer. */
  function handle(d: Delivery, firstDelivery: boolean) {
    running.add(entry(d));
    const touchEntry = () => touchMany(d).catch(() => {});
    // Keep the stream entry fresh while the step runs, so no other worker's reclaim takes it.
    const touch = inProcess ? undefined : setInterval(touchEntry, p.config.heartbeatMs);
    let acked = false;
    const handOn = async (next: StepMessage) => {
      await p.queue.handOn(d, next);
      acked = true;
    };
    const task = (async () => {
      try {
        const outcome = await execute(d, shutdown.signal, { onHeartbeat: touchEntry, handOn, firstDelivery });
        if (!acked) await ack(d);
        opts.onOutcome?.(d, outcome);
      } catch (err) {
        if (err instanceof BatonError && err.code === 'function_not_found') await ack(d);
        // Otherwise not acked: nothing was committed, so the message is reclaimed after a lease.
        log.warn({ err: (err as Error).message, runId: d.message.runId, seq: d.message.seq }, 'step not completed');
      }
    })().finally(() => {
      clearInterval(touch);
      running.delete(entry(d));
      active.delete(task);
      slotFreed?.();
    });
    active.add(task);
  }

  // Messages of dead consumers found by the reclaim pass, waiting for a free slot here.
  let orphans: PendingEntry[] = [];

  /**
   * Takes over up to `free` of the orphans. Another worker may have taken some first
   * (then they are no longer idle and are not returned); one this process runs
   * already only had its idle time reset.
   */
  async function adoptOrphans(free: number) {
    if (free <= 0 || orphans.length === 0) return 0;
    const batch = orphans.splice(0, free);
    let adopted = 0;
    for (const d of await p.queue.claim(batch, consumer, p.config.leaseMs)) {
      if (running.has(entry(d))) continue;
      p.metrics.reclaims.inc({ function: d.function });
      // A slot taken meanwhile by a new message: hand it back rather than overrun the concurrency.
      if (active.size >= concurrency) await handBack(d);
      else {
        handle(d, false);
        adopted++;
      }
    }
    return adopted;
  }

  async function handBack(d: Delivery) {
    try {
      await p.queue.publish(d.function, d.message);
      await ack(d);
    } catch {
      // Still pending: reclaimed after a lease.
    }
  }

  const stopped = () => stopLoops.signal.aborted;
  const pause = (ms: number) => sleep(ms, undefined, { signal: stopLoops.signal }).catch(() => {});

  async function readLoop() {
    let backoff = 100;
    while (!stopped()) {
      const free = concurrency - active.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
          stopLoops.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        slotFreed = null;
        continue;
      }
      try {
        // A dead worker's steps first: they have waited a lease already.
        if (orphans.length && (await adoptOrphans(free)) > 0) continue;
        const deliveries = await p.queue.read(functions, consumer, free, 1000);
        if (stopped()) {
          // Read while stopping (the blocking read cannot be interrupted): hand them back
          // now rather than leave them pending for a lease. Publish before ack, so a crash
          // in between leaves a duplicate, never a loss.
          for (const d of deliveries) await handBack(d);
          break;
        }
        for (const d of deliveries) handle(d, true);
        backoff = 100;
      } catch (err) {
        if (stopped()) break;
        log.warn({ err: (err as Error).message }, 'queue read failed; backing off');
        await pause(backoff);
        backoff = Math.min(2000, backoff * 2);
      }
    }
  }

  function every(name: string, intervalMs: number, fn: () => Promise<unknown>) {
    return (async () => {
      while (!stopped()) {
        try {
          await fn();
        } catch (err) {
          log.debug({ err: (err as Error).message, loop: name }, 'loop iteration failed');
        }
        await pause(intervalMs);
      }
    })();
  }

  /**
   * A run whose wake-up still waits in a backlog looks idle too. A stream's oldest
   * waiting message says how far behind it is, so for that function a run counts as
   * stale only once it has been idle longer than the backlog is old (plus staleMs):
   * a deep backlog does not fill up with duplicates, and after Redis loses its data
   * (no backlog) lost runs come back after staleMs.
   */
  async function republishStale(staleMs: number, ignoreLeases: boolean) {
    const staleMsByFunction: Record<string, number> = {};
    if (!ignoreLeases) {
      for (const d of await p.queue.depth([...p.functions.keys()])) {
        if (d.oldestMs > 0) staleMsByFunction[d.function] = Math.round(staleMs + d.oldestMs);
      }
    }
    const runs = await sweep(p.db, { staleMs, staleMsByFunction, ignoreLeases });
    for (const run of runs ?? []) {
      await p.queue.publish(run.function, { runId: run.id, seq: run.next_seq }, run.delay_ms);
      if (!ignoreLeases) p.metrics.sweeperRepairs.inc({ function: run.function });
    }
    if (runs?.length) log.info({ count: runs.length }, 'sweeper re-published live runs');
  }

  return {
    consumer,
    get active() {
      return active.size;
    },

    async start() {
      await p.queue.prepare(functions);
      if (opts.rebuildAtStart) await p.withDb(() => republishStale(0, true));
      unsubscribe = await p.events.onControl((m) => {
        if (m.type === 'cancel') p.inflight.cancel(m.runId);
      });
      loops.push(
        readLoop(),
        every('reclaim', Math.max(100, Math.floor(p.config.leaseMs / 4)), async () => {
          // Looks whatever the free slots (a full fleet must still find a dead worker's
          // steps); takes them when a slot is free, here or in the read loop.
          // A message's idle time counts from its delivery or last touch, so a step this
          // process runs is found only if its touches failed; it is left to run here.
          const found = await p.queue.idle(functions, p.config.leaseMs, RECLAIM_BATCH);
          orphans = found.filter((e) => !running.has(entry(e)));
          await adoptOrphans(concurrency - active.size);
        }),
        every('mover', MOVER_INTERVAL_MS, () => p.queue.promoteDue([...p.functions.keys()])),
        every('housekeeper', Math.max(1000, p.config.leaseMs), async () => {
          const done = await p.queue.housekeep([...p.functions.keys()], { deadConsumerMs: 2 * p.config.leaseMs });
          if (done.groupsCreated.length) log.warn({ functions: done.groupsCreated }, 'consumer groups were missing (Redis restarted or flushed); created again');
          if (done.consumersRemoved.length) log.info({ consumers: done.consumersRemoved }, 'removed dead consumers from their groups');
        }),
        every('sweeper', Math.max(100, Math.floor(p.config.sweepAfterMs / 2)), () => republishStale(p.config.sweepAfterMs, false)),
      );
      log.info({ functions, concurrency }, 'worker started');
    },

    async stop(graceMs = p.config.graceMs) {
      stopLoops.abort();
      slotFreed?.();
      // Timers are cancelled once the race is decided: a pending grace timer would keep
      // the process alive for the whole grace period after a quick drain.
      const timers = new AbortController();
      const timer = (ms: number) => sleep(ms, 'timeout' as const, { signal: timers.signal }).catch(() => 'cancelled' as const);
      try {
        const drained = Promise.allSettled([...active]);
        if ((await Promise.race([drained, timer(graceMs)])) === 'timeout') {
          log.warn({ inflight: active.size }, 'grace period over; releasing the leases of unfinished steps');
          shutdown.abort(new Error('the worker is shutting down'));
          await Promise.race([Promise.allSettled([...active]), timer(5000)]);
        }
      } finally {
        timers.abort();
      }
      await unsubscribe?.().catch(() => {});
      await Promise.allSettled(loops);
      log.info('worker stopped');
    },
  };
}
