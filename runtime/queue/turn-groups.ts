/**
 * Calls made in the same turn of the event loop, gathered by key and sent together at
 * `setImmediate`: one command per key instead of one per call, and nothing waits for a
 * timer. Each caller still learns whether its own item went out.
 */
interface Waiting<I> {
  item: I;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function groupInTurn<I>(keyOf: (item: I) => string, send: (items: I[]) => Promise<void>, maxBatch: number): (item: I) => Promise<void> {
  let waiting: Map<string, Waiting<I>[]> | null = null;

  const sendBatch = (batch: Waiting<I>[]) => {
    send(batch.map((w) => w.item)).then(
      () => {
        for (const w of batch) w.resolve();
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  };

  const flush = () => {
    const byKey = waiting ?? new Map<string, Waiting<I>[]>();
    waiting = null;
    for (const all of byKey.values()) {
      for (let i = 0; i < all.length; i += maxBatch) sendBatch(all.slice(i, i + maxBatch));
    }
  };

  return (item) =>
    new Promise<void>((resolve, reject) => {
      if (!waiting) {
        waiting = new Map();
        setImmediate(flush);
      }
      const key = keyOf(item);
      let list = waiting.get(key);
      if (!list) waiting.set(key, (list = []));
      list.push({ item, resolve, reject });
    });
}
