/**
 * The inspector's page shell and its sign-in page. Styles and the script come from
 * /ui/static (same origin, no inline code), as the Content-Security-Policy demands.
 */
import { html } from 'hono/html';
import type { Html } from './format.ts';
import type { Session } from './session.ts';

export function page(opts: { title: string; session: Session | null; body: Html | string; runId?: string }): Html {
  const s = opts.session;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${s?.csrf ? html`<meta name="csrf-token" content="${s.csrf}">` : ''}
<title>${opts.title} · Baton</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/inspector.css">
<script src="/ui/static/inspector.js" defer></script>
</head>
<body${opts.runId ? html` data-run-id="${opts.runId}"` : ''}>
<header class="top">
  <a class="brand" href="/ui"><span class="logo" aria-hidden="true"></span>Baton</a>
  <nav><a href="/ui">Runs</a></nav>
  <span class="spacer"></span>
  <span id="conn" class="conn" hidden></span>
  ${s?.signedIn
    ? html`<span class="tenant" title="tenant">${s.tenant}</span>
  <form method="post" action="/ui/logout" class="inline"><input type="hidden" name="csrf" value="${s.csrf}"><button class="link">Sign out</button></form>`
    : ''}
</header>
<div id="toast" class="toast" role="status" aria-live="polite" hidden></div>
<main>${opts.body}</main>
</body>
</html>`;
}

export function loginPage(opts: { next: string; error?: string }): Html {
  return page({
    title: 'Sign in',
    session: null,
    body: html`<section class="login panel">
  <h1>Sign in to the run inspector</h1>
  <p class="muted">Paste an API key (<code>baton keys create</code>; <code>npm start</code> prints its local key).
  The browser keeps only a session cookie that scripts cannot read; the key is not stored.</p>
  ${opts.error ? html`<p class="error-box">${opts.error}</p>` : ''}
  <form method="post" action="/ui/login">
    <input type="hidden" name="next" value="${opts.next}">
    <label for="key">API key</label>
    <input id="key" name="key" type="password" autocomplete="off" placeholder="bk_…" required autofocus>
    <button class="primary">Sign in</button>
  </form>
</section>`,
  });
}
