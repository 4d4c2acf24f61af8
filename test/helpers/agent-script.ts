/**
 * A scripted model for agent-loop tests, behind the OpenAI-compatible stub: each run's
 * first user message names its script (`script:<name>`), and the turn is the number of
 * assistant messages already in the conversation, so runs in parallel never mix and a
 * turn retried after a crash answers the same.
 */
import type { ChatRequest, StubReply } from './llm-stub.ts';

export type Script = StubReply[];

function firstUserText(req: ChatRequest): string {
  const user = req.messages.find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (p as { text?: string }).text ?? '').join('');
  return '';
}

export function scriptedReply(scripts: Record<string, Script>) {
  return (req: ChatRequest): StubReply => {
    const name = /script:([\w-]+)/.exec(firstUserText(req))?.[1] ?? '';
    const script = scripts[name];
    if (!script) return `no script named "${name}"`;
    const turn = req.messages.filter((m) => m.role === 'assistant').length;
    return script[Math.min(turn, script.length - 1)];
  };
}

/** The conversation a run's steps built so far: their patches' `messages`, in order. */
export function conversationOf(steps: Array<{ status: string; patch: unknown }>): Array<{ role: string; content: unknown }> {
  const messages: Array<{ role: string; content: unknown }> = [];
  for (const s of steps) {
    const appended = (s.patch as { messages?: { $append?: Array<{ role: string; content: unknown }> } } | null)?.messages?.$append;
    if (s.status === 'succeeded' && appended) messages.push(...appended);
  }
  return messages;
}
