/**
 * The offline model, `baton-offline`: answers without a network, deterministically,
 * so the demo and the tests run anywhere. It implements the AI SDK's LanguageModelV4
 * interface, so steps call it exactly as they call a real model (generate and stream).
 *
 * What it says: for a prompt that carries a unified diff, a short review of the diff
 * (files, lines added and removed, added lines that look risky); otherwise a one-line
 * acknowledgement of the prompt. If it is offered tools and the prompt says
 * "call <tool> <json>" (as a prompt-injected diff might), it obeys, like a gullible
 * model would: that is what the runtime's tool scopes are for. Offered the tools to
 * review a change, it plays an agent's policy, with real tool calls (offline-agent.ts).
 */
import type {
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4Content,
  LanguageModelV4GenerateResult,
  LanguageModelV4StreamPart,
  LanguageModelV4Usage,
} from '@ai-sdk/provider';
import { reviewPolicy } from './offline-agent.ts';

export const OFFLINE_MODEL_ID = 'baton-offline';

function promptText(options: LanguageModelV4CallOptions): string {
  const parts: string[] = [];
  for (const message of options.prompt) {
    if (message.role === 'system') parts.push(message.content);
    else
      for (const part of message.content) {
        if (part.type === 'text') parts.push(part.text);
      }
  }
  return parts.join('\n');
}

const RISKY = [/\bTODO\b/, /\bFIXME\b/, /console\.log\(/, /\bdebugger\b/, /password\s*=/i, /\beval\(/];

/** A deterministic review of a unified diff found in the prompt, or null when there is none. */
export function reviewDiff(text: string): string | null {
  if (!/^diff --git /m.test(text) && !/^@@ /m.test(text)) return null;
  const files: string[] = [];
  let added = 0;
  let removed = 0;
  const notes: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    const file = /^\+\+\+ b\/(.+)$/.exec(line);
    if (file) {
      current = file[1];
      files.push(current);
    } else if (line.startsWith('+') && !line.startsWith('+++')) {
      added++;
      if (notes.length < 5 && RISKY.some((r) => r.test(line))) notes.push(`${current}: "${line.slice(1).trim().slice(0, 80)}"`);
    } else if (line.startsWith('-') && !line.startsWith('---')) removed++;
  }
  const shown = files.slice(0, 5).join(', ') + (files.length > 5 ? `, and ${files.length - 5} more` : '');
  const verdict = notes.length ? 'Changes requested' : added + removed > 400 ? 'Consider splitting this change' : 'Looks good';
  return [
    `${verdict}. ${files.length} file(s) changed (+${added} / -${removed}): ${shown || 'no file names found'}.`,
    ...(notes.length ? ['Please look at these added lines:', ...notes.map((n) => `- ${n}`)] : ['No risky patterns found in the added lines.']),
    `(reviewed by the offline model ${OFFLINE_MODEL_ID})`,
  ].join('\n');
}

function toolCallFrom(text: string, options: LanguageModelV4CallOptions): LanguageModelV4Content | null {
  const offered = new Set((options.tools ?? []).map((t) => t.name));
  if (offered.size === 0) return null;
  const m = /call (?:the )?(?:tool )?`?([A-Za-z0-9_.-]+)`?(?: with)?\s*(\{[^\n]*\})?/i.exec(text);
  if (!m) return null;
  // A gullible model maps "review.delete_all" onto an offered "review_delete_all" if needed.
  const wanted = m[1];
  const name = offered.has(wanted) ? wanted : [...offered].find((n) => n === wanted.replaceAll('.', '_')) ?? wanted;
  let input = '{}';
  try {
    if (m[2]) input = JSON.stringify(JSON.parse(m[2]));
  } catch {
    input = '{}';
  }
  return { type: 'tool-call', toolCallId: `offline-${name}`, toolName: name, input };
}

function usageOf(prompt: string, output: string): LanguageModelV4Usage {
  const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));
  return {
    inputTokens: { total: tokens(prompt), noCache: tokens(prompt), cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: tokens(output), text: tokens(output), reasoning: undefined },
  };
}

function answer(options: LanguageModelV4CallOptions): { content: LanguageModelV4Content[]; text: string; prompt: string } {
  const prompt = promptText(options);
  const call = toolCallFrom(prompt, options);
  if (call) return { content: [call], text: '', prompt };
  const played = reviewPolicy(options, (diffs) => reviewDiff(diffs) ?? 'Looks good. No diff to read.');
  if (played) {
    const text = played.map((c) => (c.type === 'text' ? c.text : '')).join('');
    // What it read counts as input: the tool results are most of the prompt.
    return { content: played, text, prompt: prompt + JSON.stringify(options.prompt.filter((m) => m.role === 'tool')) };
  }
  const firstLine = prompt.trim().split('\n').at(-1)?.slice(0, 120) ?? '';
  const text = reviewDiff(prompt) ?? `Offline model ${OFFLINE_MODEL_ID} received ${prompt.length} characters: "${firstLine}"`;
  return { content: [{ type: 'text', text }], text, prompt };
}

export function createOfflineModel(): LanguageModelV4 {
  return {
    specificationVersion: 'v4',
    provider: 'baton',
    modelId: OFFLINE_MODEL_ID,
    supportedUrls: {},

    async doGenerate(options): Promise<LanguageModelV4GenerateResult> {
      options.abortSignal?.throwIfAborted();
      const { content, text, prompt } = answer(options);
      const isCall = content[0]?.type === 'tool-call';
      return {
        content,
        finishReason: { unified: isCall ? 'tool-calls' : 'stop', raw: undefined },
        usage: usageOf(prompt, text || JSON.stringify(content)),
        warnings: [],
      };
    },

    async doStream(options) {
      options.abortSignal?.throwIfAborted();
      const { content, text, prompt } = answer(options);
      const parts: LanguageModelV4StreamPart[] = [{ type: 'stream-start', warnings: [] }];
      if (content[0]?.type === 'tool-call') {
        for (const part of content) if (part.type === 'tool-call') parts.push(part);
      } else {
        parts.push({ type: 'text-start', id: 't0' });
        for (const piece of text.match(/\S+\s*/g) ?? []) parts.push({ type: 'text-delta', id: 't0', delta: piece });
        parts.push({ type: 'text-end', id: 't0' });
      }
      parts.push({
        type: 'finish',
        usage: usageOf(prompt, text || JSON.stringify(content)),
        finishReason: { unified: content[0]?.type === 'tool-call' ? 'tool-calls' : 'stop', raw: undefined },
      });
      return {
        stream: new ReadableStream<LanguageModelV4StreamPart>({
          start(controller) {
            for (const part of parts) controller.enqueue(part);
            controller.close();
          },
        }),
      };
    },
  };
}
