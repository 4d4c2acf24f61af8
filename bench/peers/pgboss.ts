/**
 * pg-boss: a chain is a job that sends the next, 10 deep. Baton's concurrency is 32
 * work() loops of one job each; whoever sends a job calls notifyWorker, so a worker
 * fetches it at once instead of at its next poll (0.5 s, pg-boss's minimum). A run has
 * finished when its last job is `completed` in pg-boss's table (written just after the
 * handler returns), so the time includes that write.
 */
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { finishLine, measure } from './harness.ts';

interface StepJob {
  id: string;
  i: number;
  steps: number;
}

await measure(async (e) => {
  const boss = new PgBoss({ connectionString: e.databaseUrl, max: 10 });
  boss.on('error', (err) => console.error('pg-boss:', err.message));
  await boss.start();
  await boss.createQueue('chain');
  const done = finishLine();
  const workers: string[] = [];
  let nextWorker = 0;
  const notifySomeone = () => boss.notifyWorker(workers[nextWorker++ % workers.length]);
  for (let k = 0; k < e.concurrency; k++) {
    const self = { id: '' };
    self.id = await boss.work<StepJob>('chain', { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
      const { id, i, steps } = job.data;
      if (i + 1 < steps) {
        await boss.send('chain', { id, i: i + 1, steps });
        boss.notifyWorker(self.id); // this worker is free as soon as we return
      } else {
        done.finish(id);
      }
    });
    workers.push(self.id);
  }
  const client = new pg.Pool({ connectionString: e.databaseUrl, max: 1 });
  return {
    async run(id, steps) {
      const finished = done.wait(id);
      await boss.send('chain', { id, i: 0, steps });
      notifySomeone();
      await finished;
    },
    async finishedAt(ids) {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        const { rows } = await client.query<{ completed: number; end_ms: number }>(
          `select count(*) filter (where state = 'completed')::int as completed,
                  (extract(epoch from max(completed_on)) * 1000)::float8 as end_ms
           from pgboss.job where name = 'chain' and data->>'id' = any($1) and (data->>'i')::int + 1 = (data->>'steps')::int`,
          [ids],
        );
        if (rows[0].completed === ids.length) return rows[0].end_ms;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      throw new Error('pg-boss did not record the last jobs as completed within 60 s');
    },
    async close() {
      await client.end();
      await boss.stop({ graceful: false, timeout: 5000 });
    },
  };
});
