/**
 * The CLI's HTTP client: BATON_URL (default http://127.0.0.1:8080) and BATON_API_KEY.
 * Errors from the API are shown as `code: message`.
 */
export interface ApiClient {
  base: string;
  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stream(path: string, onEvent: (event: string, data: string) => void | 'stop'): Promise<void>;
}

export function createClient(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const base = (env.BATON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const headers: Record<string, string> = {};
  if (env.BATON_API_KEY) headers.authorization = `Bearer ${env.BATON_API_KEY}`;
  return {
    base,
    async request<T>(method: string, path: string, body?: unknown) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (err) {
        throw new Error(`cannot reach ${base} (${(err as Error).cause ?? (err as Error).message}); is \`baton api\` running? set BATON_URL`, {
          cause: err,
        });
      }
      const text = await res.text();
      const parsed = text ? (JSON.parse(text) as T & { error?: { code: string; message: string } }) : ({} as T & { error?: undefined });
      if (res.status >= 400) {
        const e = parsed.error;
        throw new Error(e ? `${e.code}: ${e.message}` : `HTTP ${res.status}`);
      }
      return { status: res.status, body: parsed };
    },
    async stream(path, onEvent) {
      const res = await fetch(`${base}${path}`, { headers: { ...headers, accept: 'text/event-stream' } });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} for ${path}`);
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: ?(.*)$/m.exec(frame)?.[1] ?? 'message';
          const data = [...frame.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join('\n');
          if (data && onEvent(event, data) === 'stop') return;
        }
      }
    },
  };
}
