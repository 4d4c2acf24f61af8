// The run inspector's only script: progressive enhancement over server-rendered pages
// (every page works without it). Actions go to the /v1 API with the session cookie and
// the page's CSRF token; a run page follows the run's event stream and re-renders the
// part that changed from the server (`?fragment=live|step`), keeping the scroll position.
(() => {
  'use strict';
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
  const runId = document.body.dataset.runId ?? null;
  const streams = new Map(); // seq -> text streamed so far (LLM tokens)

  function localTimes(root) {
    for (const t of root.querySelectorAll('time[datetime]')) {
      const d = new Date(t.getAttribute('datetime'));
      if (!Number.isNaN(d.getTime())) t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
    }
  }

  let toastTimer = null;
  function toast(message, bad = false) {
    const el = document.getElementById('toast');
    if (!el) return;
    el.textContent = message;
    el.classList.toggle('bad', bad);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (el.hidden = true), bad ? 8000 : 3000);
  }

  async function api(method, path, body) {
    const headers = { 'x-csrf-token': csrf, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error ? `${data.error.code}: ${data.error.message}` : `${res.status} ${res.statusText}`);
    return data;
  }

  async function busy(button, work) {
    if (button) button.disabled = true;
    try {
      await work();
    } catch (err) {
      toast(err.message, true);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function parseJson(text, what) {
    try {
      return text.trim() === '' ? null : JSON.parse(text);
    } catch (err) {
      throw new Error(`${what} is not valid JSON: ${err.message}`, { cause: err });
    }
  }

  // ---- the run page: the opened step, live updates ----
  const selectedSeq = () => {
    const s = new URL(location.href).searchParams.get('step');
    return s !== null && /^\d+$/.test(s) ? Number(s) : null;
  };

  let streaming = null; // the seq whose tokens show in the live box
  function paintStreams() {
    for (const pre of document.querySelectorAll('pre[data-stream-seq]')) {
      const text = streams.get(Number(pre.dataset.streamSeq));
      if (text !== undefined && pre.textContent !== text) {
        pre.textContent = text;
        pre.scrollTop = pre.scrollHeight;
      }
    }
    const box = document.getElementById('live-stream');
    if (!box) return;
    box.hidden = streaming === null;
    if (streaming === null) return;
    const row = document.querySelector(`.tl-row[data-seq="${streaming}"] .name`);
    document.getElementById('live-stream-step').textContent = `#${streaming}${row ? ` ${row.textContent}` : ''}`;
    const pre = document.getElementById('live-stream-text');
    pre.textContent = streams.get(streaming) ?? '';
    pre.scrollTop = pre.scrollHeight;
  }

  async function fragment(kind) {
    const url = new URL(location.href);
    url.searchParams.set('fragment', kind);
    const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' } });
    if (!res.ok) throw new Error(`could not refresh (${res.status})`);
    return res.text();
  }

  /** Puts server-rendered markup in place: into #step-slot, or each top-level element over the one with its id. */
  function swap(id, markup) {
    const tpl = document.createElement('template');
    tpl.innerHTML = markup.trim();
    if (id === 'step-slot') {
      const slot = document.getElementById(id);
      slot?.replaceChildren(...tpl.content.childNodes);
      if (slot) localTimes(slot);
    } else {
      for (const next of [...tpl.content.children]) {
        const el = next.id ? document.getElementById(next.id) : null;
        if (!el) continue;
        if (el.contains(document.activeElement) && el.id === 'run-data') continue; // do not wipe a form being typed in
        el.replaceWith(next);
        localTimes(next);
      }
    }
    paintStreams();
  }

  let refreshing = null;
  let again = false;
  async function refresh(withStep) {
    if (!runId) return;
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        const y = window.scrollY;
        swap('live', await fragment('live'));
        if (withStep && selectedSeq() !== null) swap('step-slot', await fragment('step'));
        window.scrollTo(0, y);
      } catch (err) {
        toast(err.message, true);
      }
    })();
    await refreshing;
    refreshing = null;
    if (again) {
      again = false;
      await refresh(withStep);
    }
  }

  async function openStep(seq, push) {
    const url = new URL(location.href);
    if (seq === null) url.searchParams.delete('step');
    else url.searchParams.set('step', String(seq));
    url.hash = '';
    if (push) history.pushState(null, '', url);
    for (const row of document.querySelectorAll('.tl-row')) row.classList.toggle('selected', Number(row.dataset.seq) === seq);
    if (seq === null) {
      location.reload();
      return;
    }
    swap('step-slot', await fragment('step'));
    document.getElementById('step')?.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  }

  let source = null;
  function follow() {
    const conn = document.getElementById('conn');
    const status = document.getElementById('live')?.dataset.status;
    if (!runId || source || !['queued', 'running', 'waiting'].includes(status)) return;
    source = new EventSource(`/v1/runs/${runId}/events`);
    const show = (text, cls) => {
      if (!conn) return;
      conn.hidden = false;
      conn.textContent = text;
      conn.className = `conn ${cls}`;
    };
    source.onopen = () => show('live', 'live');
    source.onerror = () => {
      // A dropped stream is resumed by EventSource itself (with Last-Event-ID); one refused outright
      // (429 too_many_streams, 401) is closed for good: the periodic refresh keeps the page current.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        show('refreshing every 5 s', 'off');
      } else show('reconnecting…', 'off');
    };
    const onStep = (e) => {
      const data = JSON.parse(e.data);
      // The answer is in the step's recorded call now: the live box has done its job.
      if (e.type !== 'step.started' && data.seq === streaming) streaming = null;
      refresh(data.seq === selectedSeq());
    };
    for (const name of ['step.started', 'step.completed', 'step.failed', 'run.waiting']) source.addEventListener(name, onStep);
    source.addEventListener('step.delta', (e) => {
      const d = JSON.parse(e.data);
      streams.set(d.seq, (streams.get(d.seq) ?? '') + d.text);
      streaming = d.seq;
      paintStreams();
    });
    source.addEventListener('run.finished', () => {
      source.close();
      source = null;
      show('finished', '');
      refresh(true);
    });
  }

  // Bars of a live run grow with time even when no event arrives; a list with live runs follows them.
  setInterval(() => {
    if (document.hidden) return;
    const status = document.getElementById('live')?.dataset.status;
    if (runId && ['queued', 'running', 'waiting'].includes(status)) refresh(false);
    if (document.getElementById('runs-body')?.dataset.live === 'true') {
      fragment('rows').then((markup) => swap('runs-body', markup), () => {});
    }
  }, 5000);

  // ---- actions ----
  document.addEventListener('click', (e) => {
    const row = e.target.closest('a.tl-row');
    if (row && runId && !row.classList.contains('pending') && !e.metaKey && !e.ctrlKey && !e.shiftKey) {
      e.preventDefault();
      openStep(Number(row.dataset.seq), true).catch((err) => toast(err.message, true));
      return;
    }
    const copy = e.target.closest('[data-copy]');
    if (copy) {
      navigator.clipboard?.writeText(copy.dataset.copy).then(() => toast('Copied'), () => toast('Could not copy', true));
      return;
    }
    const button = e.target.closest('button[data-action]');
    if (!button || !runId) return;
    const action = button.dataset.action;
    busy(button, async () => {
      if (action === 'cancel') {
        await api('POST', `/v1/runs/${runId}/cancel`);
        toast('Run cancelled');
        await refresh(true);
      } else if (action === 'retry') {
        await api('POST', `/v1/runs/${runId}/retry`);
        toast('Retrying');
        await refresh(true);
        follow();
      } else if (action === 'replay') {
        const fromSeq = Number(button.dataset.fromSeq ?? 0);
        const r = await api('POST', `/v1/runs/${runId}/replay`, { fromSeq });
        location.assign(`/ui/runs/${r.id}`);
      }
    });
  });

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (form.matches('[data-start-run]')) {
      e.preventDefault();
      busy(form.querySelector('button'), async () => {
        const fn = form.elements.function.value;
        const input = parseJson(form.elements.input.value, 'The input');
        const r = await api('POST', `/v1/functions/${encodeURIComponent(fn)}/runs`, input ?? {});
        location.assign(`/ui/runs/${r.id}`);
      });
    } else if (form.matches('form.approval')) {
      e.preventDefault();
      const approve = e.submitter?.value === 'true';
      const note = form.elements.note.value.trim();
      busy(e.submitter, async () => {
        await api('POST', `/v1/runs/${runId}/signals/approval`, approve ? { approve: true } : { approve: false, ...(note ? { note } : {}) });
        toast(approve ? 'Approved' : 'Rejected');
        await refresh(true);
      });
    } else if (form.matches('[data-signal]')) {
      e.preventDefault();
      busy(form.querySelector('button'), async () => {
        const name = form.elements.name.value.trim();
        const payload = parseJson(form.elements.payload.value, 'The payload');
        const r = await api('POST', `/v1/runs/${runId}/signals/${encodeURIComponent(name)}`, payload);
        toast(r.buffered ? `Signal "${name}" kept until the run waits for it` : `Signal "${name}" sent`);
        await refresh(true);
      });
    }
  });

  document.addEventListener('change', (e) => {
    const select = e.target;
    const form = select.closest?.('[data-start-run]');
    if (!form || select.name !== 'function') return;
    const examples = JSON.parse(form.dataset.examples || '{}');
    form.elements.input.value = JSON.stringify(examples[select.value] ?? {}, null, 2);
  });

  window.addEventListener('popstate', () => {
    if (runId) openStep(selectedSeq(), false).catch(() => location.reload());
  });

  localTimes(document);
  follow();
  // A step opened by a shared link: bring it into view.
  if (runId && selectedSeq() !== null && location.hash === '#step') document.getElementById('step')?.scrollIntoView({ block: 'start' });
})();
