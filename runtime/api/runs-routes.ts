/**
 * /v1 routes: trigger a run (202 + id, never waits for the agent), read it, and act
 * on it (cancel, retry, replay, signal). Runs belong to the caller's tenant.
 */
import { Hono } from 'hono';
import * as v from 'valibot';
import { toJsonSchema } from '@valibot/to-json-schema';
import { RUN_STATUS, type Run } from '../../schema/tables.ts';
import type { Agent } from '../define.ts';
import { BatonError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { cancelRun, replayRun, retryRun, type Wakeup } from '../store/control.ts';
import { deliverSignal, resumeFromInbox } from '../store/signals.ts';
import { createRun, getRun, getRunWithSteps, listRuns, runSummary, runView } from '../store/runs.ts';
import { getStepDetail, stepDetailView } from '../store/step-detail.ts';
import type { ApiEnv } from './auth.ts';
import { readJson, validate } from './body.ts';
import { createEventStreams, runEvents } from './streams/event-stream.ts';
import { startRunSpan } from '../tracing.ts';
import { admitRun } from './quotas.ts';
import { newRunId } from './run-id.ts';
import { completeJson } from './response-headers.ts';
import { batchPublishes } from '../queue/publish-batches.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SIGNAL_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

export const runUrls = (id: string) => ({ statusUrl: `/v1/runs/${id}`, eventsUrl: `/v1/runs/${id}/events` });

const ListQuery = v.object({
  // Shaped like a function name (defineAgent's rule), so no odd byte reaches SQL.
  function: v.optional(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be a function name'))),
  status: v.optional(v.picklist(RUN_STATUS)),
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,4}$/, 'must be a number from 1 to 1000'), v.transform(Number), v.minValue(1), v.maxValue(1000)), '50'),
  before: v.optional(
    v.pipe(
      v.string(),
      v.isoTimestamp('must be an ISO 8601 timestamp'),
      v.transform((s) => new Date(s)),
      // PostgreSQL has no year 0 (and JavaScript dates reach past 9999).
      v.check((d) => d.getUTCFullYear() >= 1 && d.getUTCFullYear() <= 9999, 'must be a date from year 1 to 9999'),
    ),
  ),
});

/** `POST /v1/runs/:id/signals/approval`: the answer to an agent's tool call awaiting approval (README "Agents"). */
const ApprovalBody = v.object({
  approve: v.boolean('must be true or false'),
  note: v.optional(v.pipe(v.string('must be a string'), v.maxLength(2000))),
});

const ReplayBody = v.optional(v.object({ fromSeq: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))) }), {});

export function describeFunction(agent: Agent) {
  let inputSchema: unknown;
  try {
    inputSchema = toJsonSchema(agent.input, { errorMode: 'ignore' });
  } catch {
    inputSchema = null;
  }
  return {
    name: agent.name,
    description: agent.description ?? null,
    start: agent.start,
    steps: [...agent.steps.keys()],
    tools: agent.tools,
    inputSchema,
    /** An agent loop's model, budgets and approvals (README "Agents"); null for a hand-wired graph. */
    agent: agent.loop ?? null,
  };
}

export function runsRoutes(p: Platform): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const streams = createEventStreams(p);
  // Wake-ups of runs created together go to Redis as one command.
  const publish = batchPublishes(p.queue);

  const functionOf = (name: string): Agent => {
    const agent = p.functions.get(name);
    if (!agent) throw new BatonError('function_not_found', `no function named "${name.slice(0, 100)}"`);
    return agent;
  };

  /** Reads a run of the caller's tenant (400 for a malformed id, 404 unknown, 403 another tenant's). */
  const ownRun = async (id: string, tenant: string): Promise<Run> => {
    if (!UUID.test(id)) throw new BatonError('invalid_run_id', `"${id.slice(0, 100)}" is not a run id (a UUID)`);
    const run = await p.withDb(() => getRun(p.db, id), 3000);
    if (!run) throw new BatonError('run_not_found', `no run ${id}`);
    if (run.tenant !== tenant) throw new BatonError('forbidden', `run ${id} belongs to another tenant`);
    return run;
  };

  /** Publishes a run's wake-up, carrying its trace (runs.trace_context) when it has one. */
  const wake = async (w: Wakeup, trace: string | null) => {
    await publish(w.function, { runId: w.id, seq: w.next_seq, ...(trace ? { trace } : {}) }).catch((err: Error) => {
      // The run is durable; the sweeper re-publishes it if this wake-up is lost.
      p.log.warn({ err: err.message, runId: w.id }, 'could not publish; the sweeper will pick the run up');
    });
  };

  app.get('/functions', (c) => c.json({ functions: [...p.functions.values()].map(describeFunction) }));
  app.get('/functions/:name', (c) => c.json(describeFunction(functionOf(c.req.param('name')))));

  app.post('/functions/:name/runs', async (c) => {
    const agent = functionOf(c.req.param('name'));
    const key = c.req.header('idempotency-key');
    if (key !== undefined && (key.length < 1 || key.length > 255)) {
      throw new BatonError('invalid_request', 'Idempotency-Key must be 1 to 255 characters');
    }
    const input = validate(agent.input, await readJson(c), 'input', 'invalid_input');
    const tenant = c.get('tenant');
    const admitted = await admitRun(p, tenant);
    // One id for every retry of the insert, so a retried insert cannot create a second run.
    const id = newRunId();
    // The run's trace starts here and is stored with it, so every later step joins it.
    const traced = startRunSpan(c.req.raw.headers, agent.name, id);
    let created: Awaited<ReturnType<typeof createRun>>;
    try {
      created = await p.withDb(
        () => createRun(p.db, { id, function: agent.name, tenant, input, start: agent.start, idempotencyKey: key, traceContext: traced?.traceparent }),
        3000,
      );
      admitted();
      if (!created.created && !created.sameInput) {
        throw new BatonError('idempotency_key_conflict', 'this Idempotency-Key was used for a run with a different input');
      }
      if (created.created) {
        p.metrics.runsCreated.inc({ function: agent.name });
        await wake({ id: created.id, function: agent.name, next_seq: 0 }, traced?.traceparent ?? null);
      } else {
        c.header('Idempotent-Replayed', 'true');
        traced?.span.setAttribute('baton.idempotent_replay', created.id);
        // A client retrying after a 503 may have created the run on its first try without
        // the wake-up going out: wake a still-queued run again (the claim admits one runner).
        if (created.status === 'queued') await wake({ id: created.id, function: agent.name, next_seq: 0 }, null);
      }
    } catch (err) {
      traced?.span.recordException(err as Error);
      throw err;
    } finally {
      traced?.span.end();
    }
    const urls = runUrls(created.id);
    const body = { id: created.id, status: created.created ? 'queued' : created.status, ...urls };
    if (created.created) return completeJson(202, body, { location: urls.statusUrl });
    c.header('Location', urls.statusUrl);
    return c.json(body, 202);
  });

  app.get('/runs', async (c) => {
    const q = validate(ListQuery, c.req.query(), 'query');
    const runs = await p.withDb(() => listRuns(p.db, { ...q, tenant: c.get('tenant') }), 3000);
    return c.json({ runs: runs.map(runSummary) });
  });

  app.get('/runs/:id', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const full = await p.withDb(() => getRunWithSteps(p.db, run.id), 3000);
    if (!full) throw new BatonError('run_not_found', `no run ${run.id}`);
    return c.json(runView(full));
  });

  app.get('/runs/:id/steps/:seq', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const raw = c.req.param('seq');
    if (!/^\d{1,9}$/.test(raw)) throw new BatonError('invalid_request', `seq: "${raw.slice(0, 20)}" is not a step number`);
    const detail = await p.withDb(() => getStepDetail(p.db, run.id, Number(raw)), 3000);
    if (!detail) throw new BatonError('step_not_found', `run ${run.id} has no step ${raw}`);
    return c.json(stepDetailView(run.id, detail));
  });

  app.get('/runs/:id/events', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    // HEAD is routed here too, and Hono drops a HEAD response's body without
    // cancelling it: a stream opened for it would poll for the life of the run.
    if (c.req.method === 'HEAD') return c.body(null, 200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    return runEvents(p, streams, c, run.id, c.get('credential'));
  });

  app.post('/runs/:id/cancel', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const cancelled = await p.withDb(() => cancelRun(p.db, run.id), 3000);
    if (!cancelled && run.status !== 'cancelled') {
      throw new BatonError('run_finished', `run ${run.id} already ${run.status}`, { details: { status: run.status } });
    }
    // Abort the in-flight call now (workers also notice at their next heartbeat).
    await p.events.publishControl({ type: 'cancel', runId: run.id }).catch(() => {});
    p.events.publish(run.id, { type: 'changed' });
    return c.json({ id: run.id, status: 'cancelled' });
  });

  app.post('/runs/:id/retry', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const w = await p.withDb(() => retryRun(p.db, run.id), 3000);
    if (!w) throw new BatonError('run_not_failed', `only a failed or cancelled run can be retried; run ${run.id} is ${run.status}`);
    await wake(w, run.traceContext);
    p.events.publish(run.id, { type: 'changed' });
    return c.json({ id: run.id, status: 'running', ...runUrls(run.id) }, 202);
  });

  app.post('/runs/:id/replay', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const agent = functionOf(run.function);
    const body = validate(ReplayBody, await readJson(c, { optional: true }), 'body');
    const fromSeq = body?.fromSeq ?? 0;
    if (fromSeq > 0) {
      const full = await p.withDb(() => getRunWithSteps(p.db, run.id), 3000);
      const from = full?.steps.find((s) => s.seq === fromSeq);
      if (!from) throw new BatonError('invalid_request', `body.fromSeq: run ${run.id} has no step ${fromSeq}`);
      if (from.branch !== null) {
        // A branch runs only as part of its fan-out: replay the fan-out, or start after it at its join.
        throw new BatonError(
          'invalid_request',
          `body.fromSeq: step ${fromSeq} is branch ${from.branch} of the fan-out at seq ${from.fanoutSeq}; replay from ${from.fanoutSeq} or from its join`,
        );
      }
    }
    const admitted = await admitRun(p, run.tenant);
    const newId = newRunId();
    // A replay is a new run with its own trace (its root names the run it replays).
    const traced = startRunSpan(c.req.raw.headers, agent.name, newId);
    traced?.span.setAttributes({ 'baton.replay_of': run.id, 'baton.replay_from_seq': fromSeq });
    let w: Wakeup | null;
    try {
      w = await p.withDb(() => replayRun(p.db, { runId: run.id, newId, fromSeq, startStep: agent.start, traceContext: traced?.traceparent ?? null }), 3000);
      admitted();
    } finally {
      traced?.span.end();
    }
    if (!w) throw new BatonError('run_not_found', `no run ${run.id}`);
    p.metrics.runsCreated.inc({ function: agent.name });
    await wake(w, traced?.traceparent ?? null);
    const urls = runUrls(newId);
    c.header('Location', urls.statusUrl);
    return c.json({ id: newId, status: 'queued', replayOf: run.id, fromSeq, ...urls }, 202);
  });

  app.post('/runs/:id/signals/:name', async (c) => {
    const run = await ownRun(c.req.param('id'), c.get('tenant'));
    const name = c.req.param('name');
    if (!SIGNAL_NAME.test(name)) throw new BatonError('invalid_request', 'a signal name is 1-100 letters, digits, "_", "." or "-"');
    const payload = await readJson(c, { optional: true });
    // An agent's approval gate reads `approve` and `note`: a malformed answer is refused here, not taken as a "no".
    if (name === 'approval') validate(ApprovalBody, payload ?? null, 'body');
    const d = await p.withDb(() => deliverSignal(p.db, run.id, name, payload ?? null), 3000);
    if (!d || d.signalId === null) {
      const status = d?.runStatus ?? run.status;
      throw new BatonError('run_finished', `run ${run.id} is ${status}: it takes no more signals`, { details: { status } });
    }
    // Kept either way; only the wake-up is left to do (the sweeper re-publishes it if this one is lost).
    // The run waits for this name but older signals sat in its inbox: it takes the oldest now.
    const fromInbox = d.recheckInbox ? await p.withDb(() => resumeFromInbox(p.db, run.id), 3000) : null;
    const wakeup = d.wakeup ?? fromInbox;
    if (wakeup) await wake(wakeup, run.traceContext);
    p.events.publish(run.id, { type: 'changed' });
    const buffered = d.buffered && fromInbox?.signalId !== d.signalId;
    return c.json({ id: run.id, signal: name, signalId: d.signalId, buffered, status: wakeup ? 'running' : d.runStatus }, 202);
  });

  return app;
}
