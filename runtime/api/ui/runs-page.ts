/**
 * GET /ui: the runs list. Filters, the id search and the page live in the query
 * string, so every view is a link that can be shared. Pages follow a cursor (the last
 * run shown), not an offset, so a busy list does not shift under the reader.
 */
import { html } from 'hono/html';
import { RUN_STATUS, type Run } from '../../../schema/tables.ts';
import { type Html, duration, statusBadge, time } from './format.ts';

export interface RunsQuery {
  status?: string | undefined;
  function?: string | undefined;
  q?: string | undefined;
  after?: string | undefined;
  limit: number;
}

const HEX_PREFIX = /^[0-9a-f]{1,32}$/;

/** An id prefix (with or without dashes) as the range of UUIDs that start with it, or null if it is not one. */
export function idPrefixRange(q: string): [string, string] | null {
  const hex = q.toLowerCase().replace(/-/g, '');
  if (!HEX_PREFIX.test(hex)) return null;
  const fmt = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return [fmt(hex.padEnd(32, '0')), fmt(hex.padEnd(32, 'f'))];
}

export function linkTo(q: RunsQuery, change: Partial<RunsQuery>): string {
  const merged = { ...q, ...change };
  const params = new URLSearchParams();
  if (merged.status) params.set('status', merged.status);
  if (merged.function) params.set('function', merged.function);
  if (merged.q) params.set('q', merged.q);
  if (merged.limit !== 50) params.set('limit', String(merged.limit));
  if (merged.after) params.set('after', merged.after);
  const s = params.toString();
  return s ? `/ui?${s}` : '/ui';
}

export function runsPage(opts: {
  q: RunsQuery;
  runs: Run[];
  hasMore: boolean;
  functions: string[];
  examples: Record<string, unknown>;
  error?: string;
}): Html {
  const { q, runs } = opts;
  const option = (value: string, current: string | undefined, label = value) =>
    html`<option value="${value}"${value === (current ?? '') ? html` selected` : ''}>${label}</option>`;
  return html`<div class="page-head">
  <h1>Runs</h1>
  <details class="new-run" id="new-run">
    <summary class="button primary">New run</summary>
    <form class="panel" data-start-run data-examples="${JSON.stringify(opts.examples)}">
      <label>Function <select name="function">${opts.functions.map((f) => option(f, opts.functions[0]))}</select></label>
      <label>Input (JSON)<textarea name="input" rows="6" spellcheck="false">${JSON.stringify(opts.examples[opts.functions[0] ?? ''] ?? {}, null, 2)}</textarea></label>
      <button class="primary">Start run</button>
    </form>
  </details>
</div>
<form class="filters" method="get" action="/ui" role="search">
  <input type="search" name="q" value="${q.q ?? ''}" placeholder="Run id or id prefix" aria-label="run id" spellcheck="false">
  <select name="status" aria-label="status">${option('', q.status, 'any status')}${RUN_STATUS.map((s) => option(s, q.status))}</select>
  <select name="function" aria-label="function">${option('', q.function, 'any function')}${opts.functions.map((f) => option(f, q.function))}</select>
  <select name="limit" aria-label="page size">${[25, 50, 100].map((n) => option(String(n), String(q.limit), `${n} a page`))}</select>
  <button>Filter</button>
  ${q.status || q.function || q.q ? html`<a class="clear" href="/ui">clear</a>` : ''}
</form>
${opts.error ? html`<p class="error-box">${opts.error}</p>` : ''}
<table class="runs">
  <thead><tr><th>Run</th><th>Function</th><th>Status</th><th>Step</th><th>Created</th><th class="num">Duration</th></tr></thead>
  ${runRows(q, runs)}
</table>
<nav class="pager">
  ${q.after ? html`<a href="${linkTo(q, { after: undefined })}">← Newest</a>` : html`<span></span>`}
  ${opts.hasMore ? html`<a href="${linkTo(q, { after: runs.at(-1)?.id })}" rel="next">Older →</a>` : ''}
</nav>`;
}

/** Where the run is: the step it waits for or runs, where it stopped, or how many steps it took. */
function stepCell(r: Run): Html {
  if (r.status === 'waiting') return html`#${r.nextSeq} ${r.nextStep ?? ''} <span class="muted">waits for</span> <code>${r.waitSignal ?? 'a signal'}</code>`;
  if (r.status === 'succeeded') return html`<span class="muted">${r.nextSeq} steps</span>`;
  if (r.status === 'failed' || r.status === 'cancelled') return html`<span class="muted">stopped at</span> #${r.nextSeq} ${r.nextStep ?? ''}`;
  return html`#${r.nextSeq} ${r.nextStep ?? ''}`;
}

/** The list's rows (also `?fragment=rows`: the page redraws them while some run on it is live). */
export function runRows(q: RunsQuery, runs: Run[]): Html {
  const now = Date.now();
  const live = runs.some((r) => r.status === 'queued' || r.status === 'running' || r.status === 'waiting');
  return html`<tbody id="runs-body"${live ? html` data-live="true"` : ''}>
  ${runs.length === 0 ? html`<tr><td colspan="6" class="muted empty">No runs match.</td></tr>` : ''}
  ${runs.map((r) => {
    const end = r.finishedAt ? new Date(r.finishedAt).getTime() : now;
    const err = r.error as { code?: string; message?: string } | null;
    return html`<tr>
    <td><a class="run-id" href="/ui/runs/${r.id}">${r.id}</a>${r.replayOf ? html` <span class="tag" title="replay of ${r.replayOf}">replay</span>` : ''}</td>
    <td><a href="${linkTo(q, { function: r.function, after: undefined })}">${r.function}</a></td>
    <td>${statusBadge(r.status)}${err?.code ? html` <code class="err-code" title="${err.message ?? ''}">${err.code}</code>` : ''}</td>
    <td>${stepCell(r)}</td>
    <td>${time(r.createdAt)}</td>
    <td class="num">${duration(end - new Date(r.createdAt).getTime())}</td>
  </tr>`;
  })}
  </tbody>`;
}
