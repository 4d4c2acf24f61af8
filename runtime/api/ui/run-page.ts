/**
 * GET /ui/runs/:id: one run. The header (status, ids, totals, actions), the timeline
 * (every step a row: click one to open it), the run's input and output, and the
 * opened step (`?step=N`, a shareable link). The script re-renders the `live` part from
 * `?fragment=live` whenever the run's event stream says something happened.
 */
import { html } from 'hono/html';
import type { RunWithSteps } from '../../store/runs.ts';
import { usageTotals } from '../../store/runs.ts';
import { type Html, duration, errorBox, fmtInt, json, statusBadge, time } from './format.ts';
import { buildTimeline } from './timeline.ts';
import { timelineView } from './timeline-view.ts';

const LIVE = new Set(['queued', 'running', 'waiting']);

/** The part of the page that changes while the run runs. */
export function runLive(full: RunWithSteps, selected: number | null): Html {
  const { run } = full;
  const usage = usageTotals(full.attempts);
  const traceId = run.traceContext?.split('-')[1] ?? null;
  const attempts = full.attempts.length || full.steps.length;
  const tl = buildTimeline(full);
  const live = LIVE.has(run.status);
  return html`<div id="live" data-status="${run.status}">
<section class="run-head">
  <div class="title">
    <h1>${run.function} ${statusBadge(run.status)}</h1>
    <div class="ids"><code class="run-id" id="run-id">${run.id}</code> <button class="ghost small" data-copy="${run.id}" title="copy the run id">copy</button>
      ${run.replayOf ? html`<span class="muted">replay of <a href="/ui/runs/${run.replayOf}">${run.replayOf}</a></span>` : ''}
      ${traceId ? html`<span class="muted" title="OpenTelemetry trace of this run">trace <code>${traceId}</code></span> <button class="ghost small" data-copy="${traceId}" title="copy the trace id">copy</button>` : ''}</div>
  </div>
  <div class="actions">
    ${live ? html`<button class="danger" data-action="cancel">Cancel</button>` : ''}
    ${(run.status === 'failed' || run.status === 'cancelled') && run.nextStep ? html`<button class="primary" data-action="retry">Retry from #${run.nextSeq}</button>` : ''}
    <button data-action="replay" data-from-seq="0" title="A new run with the same input">Replay</button>
  </div>
</section>
<dl class="facts totals">
  <div><dt>Created</dt><dd>${time(run.createdAt)}</dd></div>
  <div><dt>${live ? 'Running for' : 'Took'}</dt><dd>${duration(tl.totals.wallMs)}</dd></div>
  <div><dt>Steps</dt><dd>${full.steps.length}${attempts > full.steps.length ? html` <span class="muted">(${attempts} attempts)</span>` : ''}</dd></div>
  <div><dt>Running · queued</dt><dd>${duration(tl.totals.runningMs)} · ${duration(tl.totals.queuedMs + tl.totals.backoffMs)}</dd></div>
  <div><dt>Tokens</dt><dd>${fmtInt(usage.inputTokens)} in · ${fmtInt(usage.outputTokens)} out</dd></div>
  <div><dt>Cost</dt><dd>${usage.llmCalls === 0 ? html`<span class="muted" title="no LLM call yet">—</span>` : usage.costUsd === null ? html`<span class="muted" title="a model without a price (BATON_PRICES)">unknown</span>` : `$${usage.costUsd.toFixed(usage.costUsd < 0.01 ? 5 : 4)}`}</dd></div>
</dl>
${run.status === 'waiting' ? waitingCard(full) : ''}
${run.error ? html`<div class="run-error">${errorBox(run.error)}</div>` : ''}
${timelineView(tl, run.id, selected)}
</div>`;
}

/** A run parked on a signal: what it waits for, the pending tool call when there is one, and how to answer. */
function waitingCard(full: RunWithSteps): Html {
  const { run } = full;
  const pending = run.waitRequest ?? null;
  const approval = run.waitSignal === 'approval';
  return html`<section class="panel waiting-card">
  <h2>Waiting for <code>${run.waitSignal ?? 'a signal'}</code>${run.wakeAt ? html` <small class="muted">until ${time(run.wakeAt)}</small>` : ''}</h2>
  ${pending ? html`<p>Pending call, held until a person decides:</p>${json(pending)}` : ''}
  ${approval
    ? html`<form class="approval" data-signal="approval">
    <input name="note" placeholder="note for the model (on reject)" aria-label="note">
    <button class="primary" name="approve" value="true">Approve</button>
    <button class="danger" name="approve" value="false">Reject</button>
  </form>`
    : ''}
</section>`;
}

/** The run's input, its output once it has one, and the signal form while it lives (redrawn with the live part). */
export function runData(full: RunWithSteps): Html {
  const { run } = full;
  return html`<aside class="run-data" id="run-data">
    ${run.output !== null ? html`<section class="panel"><h2>Output</h2>${json(run.output)}</section>` : ''}
    ${LIVE.has(run.status) ? signalForm(run.waitSignal) : ''}
    <section class="panel"><h2>Input</h2>${json(run.input)}</section>
  </aside>`;
}

export function runPage(full: RunWithSteps, step: Html | string, selected: number | null): Html {
  const { run } = full;
  return html`<nav class="crumbs"><a href="/ui">Runs</a> / <a href="/ui?function=${run.function}">${run.function}</a> / <code>${run.id}</code></nav>
${runLive(full, selected)}
<section class="panel live-answer" id="live-stream" hidden>
  <h2>Streaming from step <span id="live-stream-step"></span></h2>
  <pre class="stream" id="live-stream-text"></pre>
</section>
<div class="run-body">
  ${runData(full)}
  <div class="step-slot" id="step-slot">${step || html`<section class="panel hint"><p>Select a step in the timeline to see what it changed, the state it saw, its prompt and answer or tool call, and each attempt with its error.</p></section>`}</div>
</div>`;
}

function signalForm(waitingFor: string | null): Html {
  return html`<section class="panel">
  <h2>Send a signal</h2>
  <form class="signal" data-signal>
    <label>Name <input name="name" value="${waitingFor ?? ''}" placeholder="approval" required pattern="[A-Za-z0-9_.\\-]{1,100}"></label>
    <label>Payload (JSON) <textarea name="payload" rows="3" spellcheck="false">{}</textarea></label>
    <button>Send</button>
  </form>
</section>`;
}
