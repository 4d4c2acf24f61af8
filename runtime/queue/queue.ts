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

/** A message delivered to some consumer and not acked yet. */
export interface PendingEntry {
  function: string;
  id: string;
  consumer: string;
  idleMs: number;
}

/** What one housekeeping pass repaired or tidied. */
export interface Housekeeping {
  /** Consumer groups that were missing (Redis restarted or flushed) and were created again. */
  groupsCreated: string[];
  /** Stream entries trimmed: every one acked already (nothing undelivered or pending goes). */
  trimmed: number;
  /** Consumers removed from their groups: idle past `deadConsumerMs`, nothing pending. */
  consumersRemoved: string[];
}

export interface Queue {
  readonly kind: 'redis' | 'memory';
  /** Creates the streams and consumer groups for these functions (idempotent). */
  prepare(functions: readonly string[]): Promise<void>;
  /** Publishes now, or after `delayMs` (backoff, timeouts, re-checks). */
  publish(fn: string, message: StepMessage, delayMs?: number): Promise<void>;
  /** Publishes these wake-ups of one function now, in one round trip (the API's batched intake; see publish-batches.ts). */
  publishMany(fn: string, messages: readonly StepMessage[]): Promise<void>;
  /** Waits up to `blockMs` for at most `max` new messages across the functions' streams. */
  read(functions: readonly string[], consumer: string, max: number, blockMs: number): Promise<Delivery[]>;
  /**
   * Lists up to `max` messages per function pending longer than `minIdleMs` (their
   * consumer died or stalled), without taking them: a busy worker looks, and takes
   * them only when a slot is free (`claim`).
   */
  idle(functions: readonly string[], minIdleMs: number, max: number): Promise<PendingEntry[]>;
  /** Takes these pending messages over if they are still idle for `minIdleMs` (another worker may have been first). */
  claim(entries: readonly PendingEntry[], consumer: string, minIdleMs: number): Promise<Delivery[]>;
  ack(delivery: Delivery): Promise<void>;
  /** Publishes the next step and acks this delivery in one round trip (MULTI): a crash leaves both or neither. */
  handOn(delivery: Delivery, next: StepMessage): Promise<void>;
  /** Resets these pending messages' idle time (a heartbeat on the stream), so reclaim leaves running steps alone. */
  touchMany(fn: string, ids: readonly string[], consumer: string): Promise<void>;
  /** Moves these functions' delayed messages whose time has come onto their streams; returns how many. */
  promoteDue(functions: readonly string[]): Promise<number>;
  /**
   * Keeps the queue true and small: creates missing consumer groups, trims acked
   * entries, removes consumers idle past `deadConsumerMs` with nothing pending.
   */
  housekeep(functions: readonly string[], opts: { deadConsumerMs: number }): Promise<Housekeeping>;
  depth(functions: readonly string[]): Promise<QueueDepth[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
