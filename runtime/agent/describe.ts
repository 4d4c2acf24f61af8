/**
 * One line about what an agent step added to the conversation, read from its patch (the
 * AI SDK messages it appended): for a model turn, the tools it asked for or the start of
 * its answer; for a tool call, the tool, its arguments and how it went. Shown next to the
 * step by `baton run --follow`, `npm start` and the API (`steps[].summary`); null for
 * steps that append no messages.
 */
const MAX = 120;

interface Part {
  type?: string;
  text?: string;
  toolName?: string;
  output?: { type?: string; value?: unknown };
}

const clip = (s: string, n = MAX) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

export function summarizeStep(patch: unknown, output?: unknown): string | null {
  // A fan-out's branch appends nothing itself: its result (a tool message) is its output.
  const fromOutput = output && typeof output === 'object' && (output as { role?: unknown }).role === 'tool' ? [output] : null;
  if (fromOutput && !(patch as { messages?: unknown } | null)?.messages) return summarizeStep({ messages: { $append: fromOutput } });
  const appended = (patch as { messages?: { $append?: Array<{ role?: string; content?: unknown }> } } | null)?.messages?.$append;
  if (!Array.isArray(appended) || appended.length === 0) return null;
  const lines: string[] = [];
  const results: Part[] = [];
  for (const m of appended) {
    // Only the loop's structured messages (parts); a hand-wired step's plain text is its own business.
    if (!Array.isArray(m.content)) continue;
    const parts = m.content as Part[];
    if (m.role === 'assistant') {
      const calls = parts.filter((p) => p.type === 'tool-call');
      if (calls.length > 0) {
        const counts = new Map<string, number>();
        for (const c of calls) counts.set(c.toolName ?? '?', (counts.get(c.toolName ?? '?') ?? 0) + 1);
        lines.push(`asks ${[...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(', ')}`);
      } else {
        const text = parts.map((p) => p.text ?? '').join('');
        lines.push(`answers: ${oneLine(text)}`);
      }
    } else if (m.role === 'tool') {
      for (const p of parts.filter((x) => x.type === 'tool-result')) results.push(p);
    }
  }
  const isOk = (p: Part) => p.output?.type === 'json' || p.output?.type === 'text';
  if (results.length > 1) {
    // A join of many calls: the count, not every line.
    const failed = results.filter((p) => !isOk(p)).length;
    lines.push(`${results.length} results in call order: ${results.length - failed} ok${failed ? `, ${failed} failed` : ''}`);
  } else {
    for (const p of results) lines.push(`${p.toolName ?? '?'} → ${isOk(p) ? 'ok' : `error: ${oneLine(String(p.output?.value ?? ''))}`}`);
  }
  return lines.length ? clip(lines.join('; ')) : null;
}
