/**
 * Small pieces of the inspector's HTML: durations, times, status badges and JSON.
 * Everything goes through Hono's `html` tag, which escapes every interpolated string,
 * so a run's input or a model's answer can never become markup.
 */
import { html, raw } from 'hono/html';

export type Html = ReturnType<typeof html>;

/** 850 ms, 12.3 s, 4 m 05 s, 2 h 10 m. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

/** An absolute time in a <time> element: UTC on the server; the script shows it in the viewer's zone. */
export function time(d: Date | string | null | undefined): Html | string {
  if (!d) return '—';
  const date = new Date(d);
  const iso = date.toISOString();
  return html`<time datetime="${iso}" title="${iso}">${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
}

export function statusBadge(status: string): Html {
  return html`<span class="badge s-${status}">${status}</span>`;
}

export function kindBadge(kind: string | null): Html | string {
  return kind ? html`<span class="kind k-${kind}">${kind}</span>` : '';
}

export const fmtInt = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));

const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
const escapeText = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A JSON string literal with its `\n` escapes shown as ↵ and a real line break (diffs and prompts stay readable). */
function breakLines(literal: string): string {
  let out = '';
  for (let i = 0; i < literal.length; i++) {
    const ch = literal[i];
    if (ch === '\\' && i + 1 < literal.length) {
      const nextCh = literal[i + 1];
      out += nextCh === 'n' ? '↵\n' : ch + nextCh;
      i++;
    } else out += ch;
  }
  return out;
}

/** Pretty JSON with keys, strings, numbers and literals marked for colour (escaped first, then wrapped). */
export function json(value: unknown, opts: { cls?: string } = {}): Html {
  const text = value === undefined ? 'undefined' : JSON.stringify(value, null, 2) ?? 'null';
  let out = '';
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    out += escapeText(text.slice(last, m.index));
    const [whole, str, colon, lit, num] = m;
    if (str !== undefined) out += colon ? `<span class="j-key">${escapeText(str)}</span>${colon}` : `<span class="j-str">${escapeText(breakLines(str))}</span>`;
    else if (lit !== undefined) out += `<span class="j-lit">${lit}</span>`;
    else if (num !== undefined) out += `<span class="j-num">${num}</span>`;
    last = (m.index ?? 0) + whole.length;
  }
  out += escapeText(text.slice(last));
  return html`<pre class="json ${opts.cls ?? ''}">${raw(out)}</pre>`;
}

/** An error object as stored on steps and runs: its code and message, then anything else. */
export function errorBox(error: unknown): Html | string {
  if (!error) return '';
  const e = error as { code?: string; message?: string };
  return html`<div class="error-box"><strong>${e.code ?? 'error'}</strong> ${e.message ?? ''}${details(error)}</div>`;
}

function details(error: unknown): Html | string {
  const rest = { ...(error as Record<string, unknown>) };
  delete rest.code;
  delete rest.message;
  return Object.keys(rest).length > 0 ? html`<details class="more"><summary>details</summary>${json(rest)}</details>` : '';
}
