/**
 * Draws a Timeline (timeline.ts): one row per step, each an SVG track whose rects are
 * placed by attributes, not inline styles, so the strict CSP (no 'unsafe-inline') holds.
 * Every segment has a <title>: hovering a bar says what it was and how long it took.
 */
import { html } from 'hono/html';
import { type Html, duration, kindBadge, statusBadge } from './format.ts';
import type { Segment, Timeline } from './timeline.ts';

const WIDTH = 1000;

const LABEL: Record<Segment['kind'], string> = {
  queued: 'queued',
  waiting: 'waiting for a signal',
  running: 'running',
  succeeded: 'ran',
  failed: 'failed',
  backoff: 'backoff before the retry',
};

export function timelineView(tl: Timeline, runId: string, selected: number | null): Html {
  const span = Math.max(1, tl.end - tl.start);
  const x = (ms: number) => ((ms - tl.start) / span) * WIDTH;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => html`<span>${duration(span * f)}</span>`);
  const { totals } = tl;
  return html`<section class="panel timeline" id="timeline">
  <div class="panel-head">
    <h2>Timeline</h2>
    <ul class="legend">
      <li><i class="seg-queued"></i>queued ${duration(totals.queuedMs)}</li>
      <li><i class="seg-running"></i>running ${duration(totals.runningMs)}</li>
      <li><i class="seg-backoff"></i>retry backoff ${duration(totals.backoffMs)}</li>
      <li><i class="seg-waiting"></i>waiting for signals ${duration(totals.waitingMs)}</li>
      <li><i class="seg-failed"></i>failed attempt</li>
    </ul>
  </div>
  <div class="tl-grid">
    <div class="tl-axis"><span class="tl-label"></span><span class="tl-ticks">${ticks}</span><span class="tl-dur"></span></div>
    ${tl.rows.length === 0 ? html`<p class="muted">No step has started yet.</p>` : ''}
    ${tl.rows.map((r) => {
      const bars = r.segments.map((s) => {
        const left = x(s.start);
        const w = Math.max(3, x(s.end) - left);
        const what = `${s.attempt ? `attempt ${s.attempt}: ` : ''}${LABEL[s.kind]} ${duration(s.end - s.start)}${s.note ? ` (${s.note})` : ''}`;
        return html`<rect class="seg-${s.kind}" x="${left.toFixed(1)}" y="${s.kind === 'queued' || s.kind === 'waiting' || s.kind === 'backoff' ? 5 : 1}" width="${w.toFixed(1)}" height="${s.kind === 'queued' || s.kind === 'waiting' || s.kind === 'backoff' ? 6 : 14}" rx="2"><title>${what}</title></rect>`;
      });
      const href = r.pending ? `/ui/runs/${runId}` : `/ui/runs/${runId}?step=${r.seq}#step`;
      return html`<a class="tl-row${selected === r.seq ? ' selected' : ''}${r.pending ? ' pending' : ''}${r.kept ? ' kept' : ''}${r.branch !== null ? ' branch' : ''}" href="${href}" data-seq="${r.seq}"${r.kept ? html` title="kept from the run this one replays"` : ''}>
      <span class="tl-label">${r.branch !== null ? html`<span class="fork" title="branch ${r.branch} of a fan-out">↳${r.branch}</span> ` : ''}<span class="seq">#${r.seq}</span> <span class="name">${r.name}</span> ${kindBadge(r.kind)}${r.attempts > 1 ? html` <span class="retries" title="${r.attempts} attempts">×${r.attempts}</span>` : ''}${r.kept ? html` <span class="tag">kept</span>` : ''}</span>
      <svg class="tl-track" viewBox="0 0 ${WIDTH} 16" preserveAspectRatio="none" role="img" aria-label="step ${r.seq} ${r.name}">${bars}</svg>
      <span class="tl-dur">${r.pending ? statusBadge(r.status.startsWith('waiting') ? 'waiting' : 'queued') : duration(r.runningMs)}${r.queuedMs + r.waitingMs > 0 ? html`<small> +${duration(r.queuedMs + r.waitingMs)} ${r.waitingMs > 0 ? 'waiting' : 'queued'}</small>` : ''}</span>
    </a>`;
    })}
  </div>
</section>`;
}
