/**
 * The queue carries wake-ups only: "run step `seq` of run `runId`". PostgreSQL is the
 * truth, so a lost or duplicated message never loses or repeats work (the claim
 * admits one runner; the sweeper re-publishes what was lost).
 *
 * Like Hono's router interface, one small shape with two implementations:
 * Redis Streams (redis.ts) and in-process (memory.ts).
 */
export interface StepMessage {
  runId: string;
  seq: number;
  /**
   * The run's trace (W3C `traceparent`), so whoever runs or dispatches the step joins it.
   * Optional: a delayed wake-up drops it, and the run's row has it (`runs.trace_context`).
   */
  trace?: string | undefined;
}

/** A message handed to one consumer; it stays pending until acked (or reclaimed). */
export interface Delivery {
  function: string;
  id: string;
  message: StepMessage;
}

export interface QueueDepth {
  function: string;
  /** Published, not yet delivered (KEDA's lagCount). Null when Redis cannot tell. */
  lag: number | null;
  /** Delivered, not yet acked: steps in flight (KEDA's pendingEntriesCount). */
  pending: number;
  /** Age of the oldest message not yet delivered (ms; 0 when there is none): how far behind the backlog is. */
  oldestMs: number;
}

export interface Queue {
  readonly kind: 'redis' | 'memory';
  /** Creates the streams and consumer groups for these functions (idempotent). */
  prepare(functions: readonly string[]): Promise<void>;
  /** Publishes now, or after `delayMs` (backoff, timeouts, re-checks). */
  publish(fn: string, message: StepMessage, delayMs?: number): Promise<void>;
  /** Waits up to `blockMs` for at most `max` new messages across the functions' streams. */
  read(functions: readonly string[], consumer: string, max: number, blockMs: number): Promise<Delivery[]>;
  /** Takes over messages pending longer than `minIdleMs` (their consumer died). */
  reclaim(functions: readonly string[], consumer: string, minIdleMs: number, max: number): Promise<Delivery[]>;
  ack(delivery: Delivery): Promise<void>;
  /** Resets a pending message's idle time (a heartbeat on the stream), so reclaim leaves a running step alone. */
  touch(delivery: Delivery, consumer: string): Promise<void>;
  /** Moves delayed messages whose time has come onto their streams; returns how many. */
  promoteDue(): Promise<number>;
  depth(functions: readonly string[]): Promise<QueueDepth[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
