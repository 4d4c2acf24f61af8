/**
 * DBOS Transact: a workflow of 10 checkpointed steps (DBOS.runStep), started on a
 * queue with Baton's concurrency per worker and a 50 ms polling interval (the 1 s
 * default would cap it near 10 workflows/s). A run has finished when DBOS records the
 * workflow SUCCESS (workflow_status.updated_at), which it writes after the last step.
 */
import { DBOS } from '@dbos-inc/dbos-sdk';
import pg from 'pg';
import { finishLine, measure } from './harness.ts';

await measure(async (e) => {
  const done = finishLine();
  async function chain(id: string, steps: number): Promise<number> {
    let count = 0;
    for (let i = 0; i < steps; i++) count = await DBOS.runStep(async () => count + 1, { name: `step${i}` });
    done.finish(id);
    return count;
  }
  const workflow = DBOS.registerWorkflow(chain, { name: 'chain' });
  DBOS.setConfig({ name: 'bench-chain', systemDatabaseUrl: e.databaseUrl, logLevel: 'error' });
  await DBOS.launch();
  await DBOS.registerQueue('chain', { workerConcurrency: e.concurrency, minPollingIntervalMs: 50 });
  const client = new pg.Pool({ connectionString: e.databaseUrl, max: 1 });
  return {
    async run(id, steps) {
      const finished = done.wait(id);
      await DBOS.startWorkflow(workflow, { workflowID: id, queueName: 'chain' })(id, steps);
      await finished;
    },
    async finishedAt(ids) {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        const { rows } = await client.query<{ done: number; end_ms: string }>(
          `select count(*)::int as done, max(updated_at)::text as end_ms from dbos.workflow_status
           where workflow_uuid = any($1) and status = 'SUCCESS'`,
          [ids],
        );
        if (rows[0].done === ids.length) return Number(rows[0].end_ms);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      throw new Error('DBOS did not record the workflows as finished within 60 s');
    },
    async close() {
      await client.end();
      await DBOS.shutdown();
    },
  };
});
