/**
 * The CLI's HTTP client. Where it sends requests: BATON_URL; else the `baton dev`
 * running on this data directory (its URL and local key are found in .baton/); else
 * http://127.0.0.1:8080. The key: BATON_API_KEY, else the local key of that `baton dev`.
 *
 * An API that does not answer yet (just started, restarting) is waited for, up to
 * BATON_API_WAIT_S seconds (default 15), saying so once; then the command exits 3.
 * API errors become one line, `code: message` (exit 1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT } from './cli.ts';
import { readDevRecord } from './local-processes.ts';

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface StreamOptions {
  /** Resume after this event id (`Last-Event-ID`). */
  lastEventId?: string | undefined;
  /** Called when the connection dropped and is being re-established. */
  onReconnect?(lastEventId: string | undefined): void;
}

export interface ApiClient {
  base: string;
  /** Where the address came from, for messages: `BATON_URL`, `baton dev (pid N)` or `default`. */
  source: string;
  request<T>(method: string, path: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<{ status: number; body: T }>;
  /**
   * Follows an SSE stream until `onEvent` returns 'stop'. A dropped connection (API
   * restart) is re-opened with `Last-Event-ID`, so no event is missed or repeated.
   */
  stream(path: string, onEvent: (e: SseEvent) => void | 'stop', opts?: StreamOptions): Promise<void>;
}

/** Errors that mean "nobody answers there (yet)", worth waiting out. */
function isUnreachable(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } }).cause;
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(
    cause?.code ?? '',
  );
}

export function createClient(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const dataDir = path.resolve(env.BATON_DATA_DIR || '.baton');
  const dev = env.BATON_URL ? null : readDevRecord(dataDir);
  const base = (env.BATON_URL || dev?.url || 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const source = env.BATON_URL ? 'BATON_URL' : dev ? `baton dev (pid ${dev.pid}, ${dataDir})` : 'default';
  let key = env.BATON_API_KEY;
  if (!key && dev) key = readLocalKey(dataDir);
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const waitMs = Math.max(0, Number(env.BATON_API_WAIT_S ?? 15)) * 1000;

  /** Runs `attempt` until it stops failing with "unreachable" or the wait is over. */
  async function reach<T>(attempt: () => Promise<T>, budgetMs = waitMs): Promise<T> {
    const deadline = Date.now() + budgetMs;
    let said = false;
    for (let delay = 100; ; delay = Math.min(1000, delay * 2)) {
      try {
        return await attempt();
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        if (Date.now() >= deadline) {
          const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
          throw new CliError(
            `cannot reach the API at ${base} (${why}${budgetMs ? ` for ${Math.round(budgetMs / 1000)} s` : ''}); is \`baton api\` (or \`npm start\`) running? Set BATON_URL to point elsewhere`,
            EXIT.unreachable,
          );
        }
        if (!said) {
          process.stderr.write(`waiting for the API at ${base}…\n`);
          said = true;
        }
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      }
    }
  }

  async function request<T>(method: string, p: string, body?: unknown, extraHeaders: Record<string, string> = {}) {
    const res = await reach(() =>
      fetch(`${base}${p}`, {
        method,
        headers: { ...headers, ...extraHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const text = await res.text();
    let parsed: (T & { error?: { code: string; message: string } }) | undefined;
    try {
      parsed = text ? JSON.parse(text) : ({} as T);
    } catch {
      throw new CliError(`${base}${p} answered ${res.status} with a body that is not JSON; is BATON_URL a Baton API?`);
    }
    if (res.status >= 400) {
      const e = parsed?.error;
      if (res.status === 401 && !key) throw new CliError(`${e?.code ?? 'unauthorized'}: this API needs a key; set BATON_API_KEY (baton keys create --tenant NAME)`);
      throw new CliError(e ? `${e.code}: ${e.message}` : `${base}${p} answered HTTP ${res.status}`);
    }
    return { status: res.status, body: parsed as T };
  }

  async function stream(p: string, onEvent: (e: SseEvent) => void | 'stop', opts: StreamOptions = {}) {
    let lastId = opts.lastEventId;
    for (let reconnects = 0; ; reconnects++) {
      if (reconnects > 0) {
        opts.onReconnect?.(lastId);
        // An API that closes streams at once must not turn this into a busy loop.
        await sleep(Math.min(2000, 100 * 2 ** Math.min(reconnects, 5)));
      }
      const res = await reach(() =>
        fetch(`${base}${p}`, { headers: { ...headers, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) } }),
      );
      if (!res.ok || !res.body) {
        const text = await res.text().catch(() => '');
        let e: { code?: string; message?: string } | undefined;
        try {
          e = (JSON.parse(text) as { error?: typeof e }).error;
        } catch {
          // not JSON
        }
        throw new CliError(e?.code ? `${e.code}: ${e.message}` : `${base}${p} answered HTTP ${res.status}`);
      }
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true }).replaceAll('\r\n', '\n');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: ?(.*)$/m.exec(frame)?.[1] ?? 'message';
            const id = /^id: ?(.*)$/m.exec(frame)?.[1];
            const data = [...frame.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join('\n');
            if (!data) continue;
            if (id !== undefined) lastId = id;
            if (onEvent({ event, id, data }) === 'stop') return;
          }
        }
      } catch (err) {
        // The connection broke mid-stream (API stopped): resume from the last event.
        if (!(err instanceof TypeError) && !isUnreachable(err) && (err as { name?: string }).name !== 'AbortError') throw err;
      }
    }
  }

  return { base, source, request, stream };
}

function readLocalKey(dir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, 'api-key'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
