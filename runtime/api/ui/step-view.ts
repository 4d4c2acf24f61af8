/**
 * One step, opened: what it changed (its patch), the state it saw, every attempt with
 * its error, and each attempt's call: the prompt and the model's answer, or the tool's
 * arguments and result (`step_calls`), plus the tool-call audit rows and the signal it
 * received. Rendered from the same view as `GET /v1/runs/:id/steps/:seq`.
 */
import { html } from 'hono/html';
import type { StepDetailView } from '../../store/step-detail.ts';
import { type Html, duration, errorBox, fmtInt, json, kindBadge, statusBadge, time } from './format.ts';

type Attempt = StepDetailView['attempts'][number];

export function stepView(d: StepDetailView, opts: { live: boolean }): Html {
  const attempts = [...d.attempts].reverse();
  return html`<section class="panel step" id="step" data-seq="${d.seq}" data-status="${d.status}">
  <div class="panel-head">
    <h2><span class="seq">#${d.seq}</span> ${d.name} ${kindBadge(d.kind)} ${statusBadge(d.status)}</h2>
    <div class="actions">
      ${d.branch
        ? html`<span class="muted" title="a replay starts at the fan-out or at its join">branch ${d.branch.index} of the fan-out at #${d.branch.fanoutSeq ?? ''}</span>`
        : html`<button data-action="replay" data-from-seq="${d.seq}" title="A new run with this run's input that keeps steps 0–${d.seq - 1} and runs again from here">Replay from this step</button>`}
      <a class="button ghost" href="/ui/runs/${d.runId}" aria-label="close">✕</a>
    </div>
  </div>
  <dl class="facts">
    <div><dt>Attempts</dt><dd>${d.attempts.length}</dd></div>
    <div><dt>Started</dt><dd>${time(d.startedAt)}</dd></div>
    <div><dt>Ran for</dt><dd>${duration(d.durationMs)}</dd></div>
    <div><dt>Next step</dt><dd>${d.branch ? html`<span class="muted">the join</span>` : (d.nextStep ?? (d.status === 'succeeded' ? html`<span class="muted">end of run</span>` : '—'))}</dd></div>
    ${d.usage ? html`<div><dt>Tokens</dt><dd>${fmtInt(d.usage.inputTokens)} in · ${fmtInt(d.usage.outputTokens)} out <span class="muted">${d.usage.model}</span></dd></div>` : ''}
  </dl>
  ${opts.live && d.status === 'running' ? html`<div class="live-answer"><h3>Streaming answer</h3><pre class="stream" data-stream-seq="${d.seq}"></pre></div>` : ''}
  ${d.branch ? html`<div class="io"><div><h5>Branch input</h5>${json(d.branch.input)}</div><div><h5>Branch output</h5>${json(d.branch.output)}</div></div>` : ''}
  ${attempts.map((a) => attemptView(a, d.attempts.length))}
  ${d.toolCalls.length > 0 ? toolAudit(d.toolCalls) : ''}
  ${d.signal ? html`<h3>Signal received</h3><p><code>${d.signal.name}</code> at ${time(d.signal.createdAt)}</p>${json(d.signal.payload)}` : ''}
  <h3>Changes <small class="muted">the step's patch: keys replaced, <code>$append</code> appended</small></h3>
  ${d.patch === null ? html`<p class="muted">No changes recorded${d.status === 'running' ? ' yet' : ''}.</p>` : json(d.patch, { cls: 'patch' })}
  <details class="state"${d.kind === 'compute' ? html` open` : ''}>
    <summary><h3>State it saw</h3> <small class="muted">${Object.keys(d.stateBefore).length} keys: the last snapshot before it plus later patches</small></summary>
    ${json(d.stateBefore)}
  </details>
</section>`;
}

function attemptView(a: Attempt, total: number): Html {
  return html`<article class="attempt a-${a.status}">
  <header>
    <strong>Attempt ${a.attempt}</strong>${total > 1 ? html`<span class="muted"> of ${total}</span>` : ''} ${statusBadge(a.status)}
    <span class="muted">${time(a.startedAt)} · ${duration(a.durationMs)}${a.worker ? html` · <code>${a.worker}</code>` : ''}</span>
    ${a.usage ? html`<span class="tokens">${fmtInt(a.usage.inputTokens)} in · ${fmtInt(a.usage.outputTokens)} out</span>` : ''}
  </header>
  ${errorBox(a.error)}
  ${a.call ? callView(a.call) : ''}
</article>`;
}

function callView(call: NonNullable<Attempt['call']>): Html {
  const req = (call.request ?? {}) as Record<string, unknown>;
  if (call.kind === 'tool') {
    return html`<div class="call">
    <h4>Tool <code>${String(req.tool ?? '')}</code></h4>
    <div class="io"><div><h5>Arguments</h5>${json(req.args ?? {})}</div>
    <div><h5>${call.error ? 'Error' : 'Result'}</h5>${call.error ? errorBox(call.error) : json(call.response)}</div></div>
  </div>`;
  }
  const res = (call.response ?? null) as { text?: string; toolCalls?: unknown[]; finishReason?: string } | null;
  const instructions = req.instructions ?? req.system;
  return html`<div class="call">
  <div class="io">
    <div class="prompt"><h5>Prompt <span class="muted">${String(req.model ?? '')}</span></h5>
      ${instructions ? html`<div class="msg m-system"><span class="role">instructions</span>${text(instructions)}</div>` : ''}
      ${req.prompt !== undefined ? html`<div class="msg m-user"><span class="role">prompt</span>${text(req.prompt)}</div>` : ''}
      ${typeof req.earlierMessages === 'number' ? html`<p class="muted">… ${req.earlierMessages} earlier messages (they are in the state this step saw)</p>` : ''}
      ${Array.isArray(req.messages) ? (req.messages as Array<{ role?: string; content?: unknown }>).map((m) => html`<div class="msg m-${m.role ?? 'user'}"><span class="role">${m.role ?? ''}</span>${text(m.content)}</div>`) : ''}
      ${Array.isArray(req.tools) && req.tools.length > 0 ? html`<p class="muted">tools offered: ${(req.tools as string[]).map((t) => html`<code>${t}</code> `)}</p>` : ''}
    </div>
    <div class="answer"><h5>Answer${res?.finishReason ? html` <span class="muted">finished: ${res.finishReason}</span>` : ''}</h5>
      ${call.error ? errorBox(call.error) : ''}
      ${res?.text ? html`<div class="msg m-assistant">${text(res.text)}</div>` : ''}
      ${res?.toolCalls && res.toolCalls.length > 0 ? html`<h5>Tool calls asked for</h5>${json(res.toolCalls)}` : ''}
    </div>
  </div>
</div>`;
}

/** A message's content: plain text as text, anything structured (parts, tool results) as JSON. */
function text(content: unknown): Html {
  return typeof content === 'string' ? html`<pre class="text">${content}</pre>` : json(content);
}

function toolAudit(rows: StepDetailView['toolCalls']): Html {
  return html`<h3>Tool calls <small class="muted">the gateway's audit (<code>tool_calls</code>)</small></h3>
<table class="audit"><thead><tr><th>attempt</th><th>tool</th><th>decision</th><th>outcome</th><th class="num">ms</th><th>arguments digest</th></tr></thead><tbody>
${rows.map((t) => html`<tr><td>${t.attempt}</td><td><code>${t.server}.${t.tool}</code></td><td>${statusBadge(t.decision)}${t.reason ? html` <span class="muted">${t.reason}</span>` : ''}</td><td>${t.outcome ?? '—'}${t.error ? html` <span class="err-code">${t.error}</span>` : ''}</td><td class="num">${t.durationMs ?? '—'}</td><td><code class="digest" title="${t.argsDigest}">${t.argsDigest.slice(0, 12)}…</code></td></tr>`)}
</tbody></table>`;
}
