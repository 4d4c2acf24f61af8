/**
 * pr-agent: the model chooses the tools. Asked to review `owner/repo#N`, a good model
 * lists the changed files, reads their diffs (several calls in one turn), posts one
 * review and answers with a summary; the offline model `baton-offline` plays exactly
 * that, with real tool calls. Every model turn and every tool call is its own step
 * (README "Agents"); `pr-review` is the same job wired by hand.
 */
import * as v from 'valibot';
import { defineAgent } from '../../runtime/define.ts';

const Input = v.object({
  repo: v.pipe(v.string(), v.minLength(1), v.maxLength(200)),
  pr: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** A commit (default HEAD) or a range `a..b` in the git tool's repository. */
  range: v.optional(v.pipe(v.string(), v.maxLength(200))),
});

export default defineAgent({
  name: 'pr-agent',
  description: 'Reviews a change in an agent loop: the model lists the files, reads the diffs and posts one review.',
  input: Input,
  tools: { git: ['list_changed_files', 'get_diff'], review: ['post_comment'] },
  timeoutMs: 120_000,
  agent: {
    instructions: [
      'You are a careful senior reviewer of code changes.',
      'List the files the change touches, read the diff of each file that matters (you may ask for several diffs at once),',
      'then post exactly one review comment: what the change does, bugs, risky lines, missing tests. Be brief and concrete.',
      'Finally answer with a one-paragraph summary of your review.',
    ].join(' '),
    prompt: (input) => `Review the change ${input.repo}#${input.pr} (range \`${input.range ?? 'HEAD'}\`).`,
    maxTurns: 10,
  },
});
