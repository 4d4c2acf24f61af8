import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BatcherOptions, createBatcher } from './batcher.ts';

/** A sender whose statements stay under way until released, recording what each one carried. */
function held() {
  const sent: number[][] = [];
  const release: Array<() => void> = [];
  const wait = () => new Promise<void>((resolve) => release.push(resolve));
  return { sent, release, wait };
}

/** sendOne / sendMany that answer each item with itself once released, recording each statement in `h`. */
function echoes(h: ReturnType<typeof held>) {
  return {
    sendOne: async (n: number) => {
      h.sent.push([n]);
      await h.wait();
      return n;
    },
    sendMany: async (ns: number[]) => {
      h.sent.push(ns);
      await h.wait();
      return ns;
    },
  };
}

test('a lone item goes at once; items arriving while the batches in flight are full wait and go together', async () => {
  const h = held();
  const send = createBatcher<number, number>({
    inFlight: 1,
    maxBatch: 10,
    sendOne: async (n) => {
      h.sent.push([n]);
      await h.wait();
      return n * 10;
    },
    sendMany: async (ns) => {
      h.sent.push(ns);
      await h.wait();
      return ns.map((n) => n * 10);
    },
  });
  const first = send(1);
  assert.deepEqual(h.sent, [[1]], 'sent at once');
  const rest = [2, 3, 4].map((n) => send(n));
  assert.equal(h.sent.length, 1, 'the others wait while one batch is under way');
  h.release.shift()?.();
  assert.equal(await first, 10);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.sent, [[1], [2, 3, 4]], 'then go as one batch');
  h.release.shift()?.();
  assert.deepEqual(await Promise.all(rest), [20, 30, 40], 'each keeps its own answer');
});

test('a batch the database refuses goes again item by item: only the bad item fails', async () => {
  let many = 0;
  const send = createBatcher<number, number>({
    inFlight: 1,
    maxBatch: 10,
    sendOne: async (n) => {
      if (n === 3) throw Object.assign(new Error('integer out of range'), { code: '22003' });
      return n;
    },
    sendMany: async () => {
      many++;
      throw Object.assign(new Error('integer out of range'), { code: '22003' });
    },
  });
  const answers = await Promise.allSettled([1, 2, 3, 4].map((n) => send(n)));
  assert.equal(many, 1);
  assert.deepEqual(
    answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as Error).message)),
    [1, 2, 'integer out of range', 4],
  );
});

test('an outage fails every item of the batch (each caller retries as it would alone)', async () => {
  let ones = 0;
  const send = createBatcher<number, number>({
    inFlight: 1,
    maxBatch: 10,
    sendOne: async (n) => {
      ones++;
      if (n === 1) await new Promise((r) => setTimeout(r, 5));
      return n;
    },
    sendMany: async () => {
      throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    },
  });
  const first = send(1);
  const rest = await Promise.allSettled([2, 3].map((n) => send(n)));
  assert.equal(await first, 1);
  assert.deepEqual(rest.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(ones, 1, 'not sent again one by one');
});

/** A batcher of one batch under way (and maxBatch 10) over `echoes(h)`, with `opts` on top. */
function echoing(h: ReturnType<typeof held>, opts: Partial<BatcherOptions<number, number>>) {
  return createBatcher<number, number>({ inFlight: 1, maxBatch: 10, ...echoes(h), ...opts });
}

test('sameTurn: the items of one turn go together even with nothing under way; later ones wait for a free slot', async () => {
  const h = held();
  const send = echoing(h, { sameTurn: true });
  const turn = [1, 2, 3].map((n) => send(n));
  assert.deepEqual(h.sent, [], 'nothing before the end of the turn');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.sent, [[1, 2, 3]], 'one batch for the turn');
  const next = send(4);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.sent.length, 1, 'waits while the batch is under way');
  h.release.shift()?.();
  assert.deepEqual(await Promise.all(turn), [1, 2, 3]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.sent, [[1, 2, 3], [4]]);
  h.release.shift()?.();
  assert.equal(await next, 4);
});

test('a batch under way longer than stalledAfterMs stops holding back the next, up to maxInFlight', async () => {
  const h = held();
  const send = echoing(h, { maxInFlight: 2, stalledAfterMs: 30 });
  const stuck = send(1);
  const next = [2, 3].map((n) => send(n));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(h.sent, [[1]], 'while the first is young, the others wait for it');
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(h.sent, [[1], [2, 3]], 'once it has stalled, the next batch goes beside it');
  const later = send(4);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(h.sent, [[1], [2, 3]], 'never more than maxInFlight under way, stalled or not');
  h.release.shift()?.();
  assert.equal(await stuck, 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.sent, [[1], [2, 3], [4]], 'a batch that ends makes room');
  h.release.splice(0).forEach((release) => release());
  assert.deepEqual(await Promise.all([...next, later]), [2, 3, 4]);
  await new Promise((r) => setImmediate(r));
  const fifth = send(5);
  const sixth = send(6);
  assert.deepEqual(h.sent.slice(3), [[5]], 'the stalled batches, ended, count no more: one under way again, the next waits');
  h.release.shift()?.();
  assert.equal(await fifth, 5);
  await new Promise((r) => setImmediate(r));
  h.release.shift()?.();
  assert.equal(await sixth, 6);
});

test('a batch that ends before stalledAfterMs leaves no timer behind: only a batch still under way counts as stalled', async () => {
  const h = held();
  const send = echoing(h, { maxInFlight: 4, stalledAfterMs: 100 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const first = send(1);
  h.release.shift()?.();
  assert.equal(await first, 1);
  await sleep(60);
  const second = send(2);
  const third = send(3);
  assert.deepEqual(h.sent, [[1], [2]], 'one under way, the other waits');
  // The first batch would have counted as stalled at 100 ms; the second does at 160.
  await sleep(60);
  assert.deepEqual(h.sent, [[1], [2]], 'the finished batch let nothing through');
  await sleep(100);
  assert.deepEqual(h.sent, [[1], [2], [3]], 'the second, still under way, did');
  h.release.splice(0).forEach((release) => release());
  assert.deepEqual(await Promise.all([second, third]), [2, 3]);
});
