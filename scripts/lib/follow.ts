/**
 * `baton run --follow` and `baton runs ID --follow`: a run's event stream, rendered.
 *
 * On a terminal: each finished step on its own line, the step in progress on a line
 * redrawn with its elapsed time, and an LLM step's tokens printed as they stream.
 * Elsewhere (a pipe, a CI log): plain lines, one per finished step. With --json: the
 * events as JSON lines on stdout. All modes end with a summary (steps, attempts,
 * tokens, cost when known, wall time) and the output (stdout).
 *
 * The stream survives an API restart: it is re-opened with Last-Event-ID, and the
 * API resumes after the last event seen. Exit code: 0 succeeded, 1 failed or cancelled.
 */
import { EXIT } from './cli.ts';
import type { ApiClient } from './client.ts';
import { type RunView, type StepView, formatDuration, formatSummary, pricesFrom, summarize } from './summary.ts';

export interface FollowOptions {
  json: boolean;
  /** Draw the live view (stderr is a terminal). */
  tty: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { columns?: number };
}

const SPINNER = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
const INDENT = '      ';

/** A fan-out's branches read as `tool ⋔2`: their lines interleave as they run side by side. */
const stepName = (s: Pick<StepView, 'name' | 'branch'>) => (s.branch ? `${s.name} ⋔${s.branch}` : s.name);
const stepLine = (mark: string, s: Pick<StepView, 'seq' | 'name' | 'kind' | 'branch'>, tail: string) =>
  `  ${mark} ${String(s.seq).padStart(2)} ${stepName(s).padEnd(14)} ${String(s.kind ?? '').padEnd(8)} ${tail}`;

/** The live terminal view: finished lines above, streamed text, one status line at the bottom. */
function createTerminalView(err: NodeJS.WritableStream & { columns?: number }) {
  let current: { seq: number; name: string; branch: number | null; kind: string | null; startedAt: number } | null = null;
  let statusShown = false;
  let textColumn = -1; // -1: no streamed text on screen for the current step
  let frame = 0;
  const width = () => Math.max(40, (err.columns ?? 100) - 2);
  const clearStatus = () => {
    if (statusShown) err.write('\r\x1b[2K');
    statusShown = false;
  };
  const drawStatus = () => {
    if (!current) return;
    const elapsed = formatDuration(Date.now() - current.startedAt);
    err.write(`\r\x1b[2K${stepLine(SPINNER[frame++ % SPINNER.length], current, elapsed)}`.slice(0, width() + 5));
    statusShown = true;
  };
  const timer = setInterval(drawStatus, 100);
  timer.unref();
  /** Ends the streamed text (if any): the cleared status line becomes the next line. */
  const endText = () => {
    clearStatus();
    textColumn = -1;
  };
  return {
    started(s: StepView) {
      endText();
      current = { seq: s.seq, name: s.name, branch: s.branch ?? null, kind: s.kind, startedAt: s.startedAt ? new Date(s.startedAt).getTime() : Date.now() };
      drawStatus();
    },
    delta(seq: number, text: string) {
      if (!current || current.seq !== seq) return;
      clearStatus();
      if (textColumn < 0) {
        if (current.kind === null) current.kind = 'llm';
        err.write(INDENT);
        textColumn = INDENT.length;
      } else {
        // Back to the end of the text, above the status line.
        err.write(`\x1b[1A\x1b[${textColumn + 1}G`);
      }
      // Wrapped here (at spaces), not by the terminal, so the cursor's column is always known.
      let out = '';
      const newline = () => {
        out += `\n${INDENT}`;
        textColumn = INDENT.length;
      };
      for (const token of text.replaceAll('\r', '').replaceAll('\t', ' ').split(/(\n| +)/)) {
        if (token === '') continue;
        if (token === '\n') newline();
        else if (token.startsWith(' ')) {
          if (textColumn > INDENT.length && textColumn + token.length < width()) {
            out += token;
            textColumn += token.length;
          } else if (textColumn > INDENT.length) newline();
        } else {
          if (textColumn > INDENT.length && textColumn + token.length > width()) newline();
          for (const ch of token) {
            if (textColumn >= width()) newline();
            out += ch;
            textColumn++;
          }
        }
      }
      err.write(`${out}\n`);
      drawStatus();
    },
    line(text: string) {
      endText();
      err.write(`${text}\n`);
      drawStatus();
    },
    finished(s: StepView) {
      if (current?.seq === s.seq) current = null;
      endText();
    },
    close() {
      clearInterval(timer);
      current = null;
      endText();
    },
  };
}

/** Plain lines for pipes and logs. */
function createPlainView(err: NodeJS.WritableStream) {
  return {
    started() {},
    delta() {},
    line(text: string) {
      err.write(`${text}\n`);
    },
    finished() {},
    close() {},
  };
}

export async function follow(client: ApiClient, runId: string, opts: FollowOptions): Promise<number> {
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const prices = pricesFrom();
  const view = opts.json ? createPlainView(stderr) : opts.tty ? createTerminalView(stderr) : createPlainView(stderr);
  let finalStatus = 'unknown';
  const onSigint = () => {
    view.close();
    stderr.write(`\nstopped following; the run goes on: baton runs ${runId} --follow\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    await client.stream(
      `/v1/runs/${runId}/events`,
      ({ event, id, data }) => {
        const d = JSON.parse(data) as StepView & { text?: string; signal?: string };
        if (opts.json) stdout.write(`${JSON.stringify({ event, id: id ?? null, data: d })}\n`);
        if (event === 'step.started') view.started(d);
        else if (event === 'step.delta') view.delta(d.seq, d.text ?? '');
        else if (event === 'step.completed') {
          view.finished(d);
          const took = d.durationMs === null ? '' : formatDuration(d.durationMs);
          if (!opts.json) view.line(stepLine('✓', d, d.summary ? `${took.padEnd(8)} ${d.summary}` : took));
        } else if (event === 'step.failed') {
          view.finished(d);
          const message = d.error?.message ?? 'failed';
          if (!opts.json) view.line(stepLine('✗', d, `attempt ${d.attempt}: ${message}`));
        } else if (event === 'run.waiting' && !opts.json) {
          const pending = (d as { pending?: { kind?: string; tool?: string; args?: unknown } | null }).pending;
          if (pending?.kind === 'approval') {
            view.line(`  … ${pending.tool} ${JSON.stringify(pending.args).slice(0, 200)} waits for approval`);
            view.line(`    (baton signal ${runId} approval '{"approve":true}', or '{"approve":false,"note":"…"}')`);
          } else view.line(`  … waiting for signal "${d.signal}" (baton signal ${runId} ${d.signal} '{…}')`);
        } else if (event === 'run.finished') {
          finalStatus = String(d.status);
          return 'stop';
        }
      },
      { onReconnect: (last) => view.line(`  (connection to the API lost; reconnecting${last ? `, resuming after event ${last}` : ''})`) },
    );
  } finally {
    view.close();
    process.off('SIGINT', onSigint);
  }
  const { body: run } = await client.request<RunView>('GET', `/v1/runs/${runId}`);
  const summary = summarize(run, prices);
  if (opts.json) stdout.write(`${JSON.stringify({ event: 'summary', id: null, data: summary })}\n`);
  else {
    stderr.write(`${formatSummary(summary)}\n`);
    stdout.write(`${JSON.stringify(run.status === 'succeeded' ? run.output : run.error, null, 2)}\n`);
  }
  return (finalStatus === 'succeeded' ? EXIT.ok : EXIT.failed) as number;
}
