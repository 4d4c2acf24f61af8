/**
 * Statements that arrive while earlier ones are under way go to PostgreSQL together, as
 * one statement over many rows (one round trip, one plan, one WAL flush), instead of
 * one each. An idle process still sends a lone item at once; batches form only under
 * load, where they cut the database's CPU and the client's per-statement work.
 *
 * Every item keeps its own answer. A batch the database refuses for a reason other than
 * an outage (one bad row) is sent again item by item, so only that item fails; an
 * outage fails every item of the batch, and each caller retries as it would alone.
 */
import { isTransientDbError } from './sqlstate.ts';

export interface BatcherOptions<I, O> {
  /** Batches under way at once; further items wait and go together. */
  inFlight: number;
  /**
   * A batch under way longer than this stops counting against `inFlight` (it has stalled: a
   * lock wait, a connection that stopped answering), so the items behind it can go, up to
   * `maxInFlight` batches under way in all. Without it every batch counts until it ends.
   */
  stalledAfterMs?: number;
  maxInFlight?: number;
  maxBatch: number;
  /**
   * Also gather the items of this turn of the event loop before sending (at `setImmediate`,
   * no timer): the requests read in one poll then go together even when nothing is under
   * way (the API's run inserts). Off: a lone item goes at once (a step's commit).
   */
  sameTurn?: boolean;
  sendOne(item: I): Promise<O>;
  /** One answer per item, in order. */
  sendMany(items: I[]): Promise<O[]>;
}

interface Pending<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export function createBatcher<I, O>(o: BatcherOptions<I, O>): (item: I) => Promise<O> {
  const waiting: Pending<I, O>[] = [];
  /** Batches under way, and those of them that have not stalled (what `inFlight` limits). */
  let underWay = 0;
  let counted = 0;
  let scheduled = false;
  const full = () => counted >= o.inFlight || underWay >= (o.maxInFlight ?? o.inFlight);

  const flush = (): void => {
    if (full()) return;
    const batch = waiting.splice(0, o.maxBatch);
    if (batch.length === 0) return;
    underWay++;
    counted++;
    let stalled = false;
    const timer =
      o.stalledAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            stalled = true;
            counted--;
            flush();
          }, o.stalledAfterMs).unref();
    void send(batch).finally(() => {
      clearTimeout(timer);
      underWay--;
      if (!stalled) counted--;
      if (waiting.length > 0) flush();
    });
  };

  const one = (p: Pending<I, O>): Promise<void> => o.sendOne(p.item).then(p.resolve, p.reject);

  const send = async (batch: Pending<I, O>[]): Promise<void> => {
    if (batch.length === 1) return one(batch[0]);
    let answers: O[];
    try {
      answers = await o.sendMany(batch.map((p) => p.item));
    } catch (err) {
      if (isTransientDbError(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      // One row the database refuses must not fail the others: each goes on its own.
      await Promise.all(batch.map(one));
      return;
    }
    batch.forEach((p, i) => p.resolve(answers[i]));
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (full()) return;
      if (!o.sameTurn) return flush();
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        flush();
      });
    });
}

/** A batcher per database handle (a pool), made on first use: `send(db, item)`. */
export function batcherPerDb<D extends object, I, O>(options: (db: D) => BatcherOptions<I, O>): (db: D, item: I) => Promise<O> {
  const batchers = new WeakMap<D, (item: I) => Promise<O>>();
  return (db, item) => {
    let send = batchers.get(db);
    if (!send) {
      send = createBatcher(options(db));
      batchers.set(db, send);
    }
    return send(item);
  };
}
