/**
 * BullMQ: a chain is a job that enqueues the next, 10 deep, on one Worker with
 * Baton's default concurrency. A run has finished when its last job's `completed`
 * event fires (after BullMQ recorded it in Redis). Durability is Redis's: this
 * server keeps no AOF or RDB, so a Redis restart would lose queued jobs.
 */
import { Queue, Worker } from 'bullmq';
import { finishLine, measure } from './harness.ts';

interface StepJob {
  id: string;
  i: number;
  steps: number;
}

await measure(async (e) => {
  const url = new URL(e.redisUrl);
  const connection = { host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0), maxRetriesPerRequest: null };
  const prefix = e.redisPrefix.replace(/:$/, '');
  const queue = new Queue<StepJob>('chain', { connection, prefix });
  const done = finishLine();
  const worker = new Worker<StepJob>(
    'chain',
    async (job) => {
      const { id, i, steps } = job.data;
      if (i + 1 < steps) await queue.add('step', { id, i: i + 1, steps });
      return i;
    },
    { connection, prefix, concurrency: e.concurrency },
  );
  worker.on('completed', (job) => {
    if (job.data.i + 1 >= job.data.steps) done.finish(job.data.id);
  });
  await worker.waitUntilReady();
  return {
    async run(id, steps) {
      const finished = done.wait(id);
      await queue.add('step', { id, i: 0, steps });
      await finished;
    },
    async close() {
      await worker.close();
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
});
