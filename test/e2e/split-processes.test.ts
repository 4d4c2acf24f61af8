/**
 * API and workers as separate processes on real PostgreSQL and Redis: 20 runs, each
 * accepted (202) before it finishes, all succeed, steps contiguous from 0; then the
 * README's SQL queries (the views the migrations create among them) run against that
 * database and return rows.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { type TestPlatform, startTestPlatform, waitFor } from '../helpers/platform.ts';
import { type BatonProcess, ROOT, startApiProcess, startWorkerProcess, stopAll } from '../helpers/processes.ts';

let t: TestPlatform;
const procs: BatonProcess[] = [];
let base = '';

before(async () => {
  // The test process hosts the tool servers and the LLM stub; API and workers are children.
  t = await startTestPlatform({ worker: false, llm: { delayMs: [20, 80] } });
  // 8 steps at once per worker: one worker cannot take all 20 wake-ups in one read, so both take part.
  const workerEnv = { ...t.env, BATON_CONCURRENCY: '8' };
  const [api, ...workers] = await Promise.all([
    startApiProcess(t.env),
    startWorkerProcess(workerEnv, 'worker-a'),
    startWorkerProcess(workerEnv, 'worker-b'),
  ]);
  procs.push(api, ...workers);
  base = api.url;
});

after(async () => {
  await stopAll(procs, 'SIGTERM');
  await t.close();
});

test('20 runs through separate API and worker processes', async () => {
  const input = JSON.parse(fs.readFileSync(path.join(ROOT, 'functions/pr-review/example.json'), 'utf8'));
  const accepted = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const res = await fetch(`${base}/v1/functions/pr-review/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      const body = (await res.json()) as { id: string; status: string };
      return { status: res.status, body, at: new Date() };
    }),
  );
  assert.deepEqual(new Set(accepted.map((a) => a.status)), new Set([202]));
  assert.ok(accepted.every((a) => a.body.status === 'queued'));

  const sql = new pg.Client({ connectionString: t.db.url });
  await sql.connect();
  try {
    const ids = accepted.map((a) => a.body.id);
    await waitFor(async () => {
      const { rows } = await sql.query(`select count(*)::int as n from runs where id = any($1) and status = 'succeeded'`, [ids]);
      return rows[0].n === 20;
    }, '20 succeeded runs', 60_000);

    // Each 202 came before its run finished (same machine, same clock; 5 ms of slack for rounding).
    const { rows: finished } = await sql.query(`select id, finished_at from runs where id = any($1)`, [ids]);
    for (const a of accepted) {
      const row = finished.find((r) => r.id === a.body.id);
      assert.ok(new Date(row.finished_at).getTime() >= a.at.getTime() - 5, `run ${a.body.id} finished before its 202`);
    }
    // Steps: contiguous from 0, no duplicates, all succeeded, three per run.
    const { rows: steps } = await sql.query(
      `select run_id, array_agg(seq order by seq) as seqs, bool_and(status = 'succeeded') as ok from steps where run_id = any($1) group by run_id`,
      [ids],
    );
    assert.equal(steps.length, 20);
    for (const s of steps) {
      assert.deepEqual(s.seqs, [0, 1, 2]);
      assert.equal(s.ok, true);
    }
    // Both workers took part (the work is shared).
    const { rows: workers } = await sql.query(`select count(distinct worker)::int as n from steps where run_id = any($1)`, [ids]);
    assert.ok(workers[0].n >= 2, `steps ran on ${workers[0].n} worker(s)`);

    // One run that fails (a revision the git tool does not know), so failed steps exist too.
    const bad = await fetch(`${base}/v1/functions/pr-review/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...input, range: 'no-such-revision' }),
    });
    const badId = ((await bad.json()) as { id: string }).id;
    await waitFor(async () => (await sql.query(`select 1 from runs where id = $1 and status = 'failed'`, [badId])).rowCount, 'the failing run', 30_000);

    // The README's queries run; the five core ones (and the tool-call ones this run made) return rows.
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Inspect runs with SQL'), readme.indexOf('\n## ', readme.indexOf('## Inspect runs with SQL') + 5));
    const queries = [...section.matchAll(/^#### (.+)\n```sql\n([\s\S]*?)```/gm)].map((m) => ({ title: m[1], sql: m[2] }));
    assert.ok(queries.length >= 10, `found ${queries.length} queries`);
    // The views the migrations create are shown, and return rows here.
    for (const view of ['run_summary', 'step_timeline', 'slow_steps', 'token_usage_by_function']) {
      assert.ok(queries.some((q) => new RegExp(`\\bfrom ${view}\\b`, 'i').test(q.sql)), `a README query reads ${view}`);
    }
    // These need runs this test does not make (denials, crash loops, fan-outs: test/integration/fanout.test.ts runs those).
    const mayBeEmpty = /in flight right now|Denied|Denials|never finished|in an inbox|crash loop|fan-out/i;
    for (const q of queries) {
      const { rows } = await sql.query(q.sql);
      if (!mayBeEmpty.test(q.title)) assert.ok(rows.length > 0, `README query "${q.title}" returned no rows`);
    }
  } finally {
    await sql.end();
  }
});
