/**
 * pr-review: the demo agent. Three steps, each one external call behind its own checkpoint:
 *   fetch_diff — the `git` tool returns the change (default: the repository's last commit);
 *   review     — the LLM reviews it (streamed: tokens appear on the run's event stream);
 *   post       — the `review` tool posts the review (deduplicated by run_id:seq, so a
 *                re-executed step never posts twice).
 * `messages` is the conversation: each step appends its contribution.
 */
import * as v from 'valibot';
import { append, defineAgent, done, next } from '../../runtime/define.ts';

const Input = v.object({
  repo: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  pr: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** A commit (default HEAD) or a range `a..b` in the git tool's repository. */
  range: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

interface State extends Record<string, unknown> {
  diff?: string;
  commit?: string;
  review?: string;
  messages?: Array<{ role: string; content: string }>;
}

const INSTRUCTIONS =
  'You are a careful senior reviewer. Review the diff: say what it changes, point out bugs, risky lines and missing tests. Be brief and concrete.';

export default defineAgent<typeof Input, State>({
  name: 'pr-review',
  description: 'Reviews a change: fetches its diff (git tool), asks the LLM for a review, posts it (review tool).',
  input: Input,
  tools: { git: ['get_diff'], review: ['post_comment'] },
  start: 'fetch_diff',
  timeoutMs: 120_000,
  steps: {
    fetch_diff: async (ctx) => {
      const d = await ctx.tool<{ diff: string; commit: string; truncated: boolean }>('git.get_diff', {
        range: ctx.input.range ?? 'HEAD',
        maxBytes: 60_000,
      });
      return next('review', {
        diff: d.diff,
        commit: d.commit,
        messages: append({ role: 'user', content: `Review ${ctx.input.repo}#${ctx.input.pr} (commit ${d.commit.slice(0, 12)}):\n\n${d.diff}` }),
      });
    },
    review: async (ctx) => {
      const answer = await ctx.llm.streamText({
        instructions: INSTRUCTIONS,
        prompt: `Review this change to ${ctx.input.repo} (pull request #${ctx.input.pr}):\n\n${ctx.state.diff ?? ''}`,
      });
      return next('post', { review: answer.text, messages: append({ role: 'assistant', content: answer.text }) });
    },
    post: async (ctx) => {
      const posted = await ctx.tool<{ comment: { id: number; postedAt: string }; created: boolean }>('review.post_comment', {
        repo: ctx.input.repo,
        pr: ctx.input.pr,
        body: ctx.state.review ?? '',
      });
      return done(
        { commentId: posted.comment.id, postedAt: posted.comment.postedAt, review: ctx.state.review, commit: ctx.state.commit },
        { messages: append({ role: 'tool', content: `posted comment #${posted.comment.id}` }) },
      );
    },
  },
});
