/**
 * GET /ui: one self-contained page that lists recent runs and shows a run's steps,
 * refreshing every two seconds. It calls the same /v1 API (with the key you paste,
 * kept in this browser's localStorage), so it sees exactly what your key may see.
 */
export function uiPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baton runs</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#1b1f24;color:#fff;padding:10px 16px;display:flex;gap:12px;align-items:center}
header h1{font-size:16px;margin:0}
input{font:inherit;padding:4px 6px;width:22em}
main{display:grid;grid-template-columns:minmax(300px,1fr) 2fr;gap:16px;padding:16px}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:left;white-space:nowrap}
tr.run{cursor:pointer} tr.run:hover{background:#eef2ff}
.succeeded{color:#15803d}.failed{color:#b91c1c}.running,.queued{color:#1d4ed8}.waiting{color:#a16207}.cancelled{color:#6b7280}
pre{background:#fff;padding:8px;overflow:auto;max-height:40vh;border:1px solid #e5e7eb}
#err{color:#b91c1c}
</style></head>
<body>
<header><h1>Baton</h1><label>API key <input id="key" type="password" placeholder="bk_…"></label><span id="err"></span></header>
<main>
<section><table><thead><tr><th>run</th><th>function</th><th>status</th><th>created</th></tr></thead><tbody id="runs"></tbody></table></section>
<section id="detail"><p>Select a run.</p></section>
</main>
<script>
const keyInput = document.getElementById('key');
keyInput.value = localStorage.getItem('batonKey') || '';
keyInput.onchange = () => { localStorage.setItem('batonKey', keyInput.value); refresh(); };
let selected = null;
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (ch) => '&#' + ch.charCodeAt(0) + ';');
async function api(path) {
  const headers = keyInput.value ? { Authorization: 'Bearer ' + keyInput.value } : {};
  const res = await fetch(path, { headers });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}
async function refresh() {
  try {
    const { runs } = await api('/v1/runs?limit=50');
    document.getElementById('runs').innerHTML = runs.map((r) =>
      '<tr class="run" data-id="' + esc(r.id) + '"><td>' + esc(r.id.slice(0, 8)) + '…</td><td>' + esc(r.function) +
      '</td><td class="' + esc(r.status) + '">' + esc(r.status) + '</td><td>' + esc(new Date(r.createdAt).toLocaleTimeString()) + '</td></tr>').join('');
    for (const tr of document.querySelectorAll('tr.run')) tr.onclick = () => { selected = tr.dataset.id; refresh(); };
    if (selected) {
      const run = await api('/v1/runs/' + selected);
      document.getElementById('detail').innerHTML = '<h2>' + esc(run.function) + ' <span class="' + esc(run.status) + '">' + esc(run.status) + '</span></h2>' +
        '<p>' + esc(run.id) + '</p><table><thead><tr><th>seq</th><th>step</th><th>kind</th><th>status</th><th>attempt</th><th>ms</th><th>tokens</th></tr></thead><tbody>' +
        run.steps.map((s) => '<tr><td>' + s.seq + '</td><td>' + esc(s.name) + '</td><td>' + esc(s.kind) + '</td><td class="' + esc(s.status) + '">' + esc(s.status) +
          '</td><td>' + s.attempt + '</td><td>' + esc(s.durationMs) + '</td><td>' + (s.usage ? esc(s.usage.inputTokens) + '/' + esc(s.usage.outputTokens) : '') + '</td></tr>').join('') +
        '</tbody></table><h3>output</h3><pre>' + esc(JSON.stringify(run.output ?? run.error, null, 2)) + '</pre><h3>input</h3><pre>' + esc(JSON.stringify(run.input, null, 2)) + '</pre>';
    }
    document.getElementById('err').textContent = '';
  } catch (e) { document.getElementById('err').textContent = e.message; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>`;
}
