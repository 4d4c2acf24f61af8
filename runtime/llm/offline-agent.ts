/**
 * How the offline model plays an agent that reviews a change when it is offered the
 * tools for it (`git_list_changed_files`, `git_get_diff`, `review_post_comment`), reading
 * only the conversation, so a run resumed anywhere makes the same choice:
 *
 *   1. no file list yet      → git_list_changed_files (the range named in the request)
 *   2. files, no diffs yet   → git_get_diff for each file, all in one turn (parallel calls)
 *   3. diffs, nothing posted → review_post_comment with its review of those diffs
 *   4. posted (or refused)   → a short summary: the answer
 *
 * The request it reads is the first user message: `owner/repo#N`, and optionally
 * "range `a..b`". A tool error (a person's rejection, an unavailable tool) is reported
 * in the summary, never retried.
 */
import type { LanguageModelV4CallOptions, LanguageModelV4Content, LanguageModelV4Prompt } from '@ai-sdk/provider';

export const REVIEW_TOOLS = { list: 'git_list_changed_files', diff: 'git_get_diff', post: 'review_post_comment' } as const;

/** Reviews at most this many files (a big change gets one review of its first files). */
const MAX_FILES = 8;

interface Result {
  toolName: string;
  ok: boolean;
  value: unknown;
}

function results(prompt: LanguageModelV4Prompt): Result[] {
  const out: Result[] = [];
  for (const message of prompt) {
    if (message.role !== 'tool') continue;
    for (const part of message.content) {
      if (part.type !== 'tool-result') continue;
      const o = part.output;
      const ok = o.type === 'json' || o.type === 'text';
      out.push({ toolName: part.toolName, ok, value: 'value' in o ? o.value : null });
    }
  }
  return out;
}

function request(prompt: LanguageModelV4Prompt): { repo: string; pr: number; range: string } | null {
  const user = prompt.find((m) => m.role === 'user');
  const text = user && Array.isArray(user.content) ? user.content.map((p) => (p.type === 'text' ? p.text : '')).join('\n') : '';
  const change = /([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)#(\d+)/.exec(text);
  if (!change) return null;
  const range = /range `([^`]+)`/.exec(text)?.[1] ?? 'HEAD';
  return { repo: change[1], pr: Number(change[2]), range };
}

const turnOf = (prompt: LanguageModelV4Prompt) => prompt.filter((m) => m.role === 'assistant').length + 1;

const call = (turn: number, i: number, toolName: string, input: unknown): LanguageModelV4Content => ({
  type: 'tool-call',
  toolCallId: `offline-${turn}-${i}`,
  toolName,
  input: JSON.stringify(input),
});

const errorText = (r: Result) => (typeof r.value === 'string' ? r.value : JSON.stringify(r.value)).slice(0, 300);

/**
 * The next move, or null when this is not such a conversation (the tools are not offered
 * or the request names no change). `review` turns diffs into review text.
 */
export function reviewPolicy(options: LanguageModelV4CallOptions, review: (diffs: string) => string): LanguageModelV4Content[] | null {
  const offered = new Set((options.tools ?? []).map((t) => t.name));
  if (!Object.values(REVIEW_TOOLS).every((t) => offered.has(t))) return null;
  const req = request(options.prompt);
  if (!req) return null;
  const turn = turnOf(options.prompt);
  const seen = results(options.prompt);
  const listed = seen.find((r) => r.toolName === REVIEW_TOOLS.list);
  const diffs = seen.filter((r) => r.toolName === REVIEW_TOOLS.diff);
  const posted = seen.find((r) => r.toolName === REVIEW_TOOLS.post);
  const change = `${req.repo}#${req.pr}`;

  if (!listed) return [call(turn, 0, REVIEW_TOOLS.list, { range: req.range })];
  if (!listed.ok) return [{ type: 'text', text: `Could not list the files of ${change}: ${errorText(listed)}` }];
  const files = ((listed.value as { files?: Array<{ path: string; status: string }> })?.files ?? []).slice(0, MAX_FILES);
  if (files.length === 0) return [{ type: 'text', text: `${change} changes no files: nothing to review.` }];
  if (diffs.length === 0) return files.map((f, i) => call(turn, i, REVIEW_TOOLS.diff, { range: req.range, path: f.path }));
  const text = diffs
    .filter((d) => d.ok)
    .map((d) => (d.value as { diff?: string })?.diff ?? '')
    .join('\n');
  const body = review(text);
  if (!posted) return [call(turn, 0, REVIEW_TOOLS.post, { repo: req.repo, pr: req.pr, body })];
  const verdict = body.split('\n')[0];
  if (!posted.ok) return [{ type: 'text', text: `Reviewed ${change} (${files.length} file(s)); the review was not posted: ${errorText(posted)}\n${verdict}` }];
  const id = (posted.value as { comment?: { id?: number } })?.comment?.id;
  return [{ type: 'text', text: `Reviewed ${change}: ${files.length} file(s), posted review comment #${id ?? '?'}.\n${verdict}` }];
}
