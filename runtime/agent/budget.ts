/**
 * An agent loop's budgets: how many model turns, tokens (input + output, every call of
 * the loop) and US dollars a run may spend. Set per agent; a run may override them in
 * its input (`"budget": { "maxTurns": 5 }`). A budget reached fails the run with
 * `budget_exceeded`, naming it in `details.budget`; the conversation so far stays in
 * the run's checkpoints.
 */
import * as v from 'valibot';
import { BatonError } from '../errors.ts';

export const DEFAULT_MAX_TURNS = 20;

export interface Budget {
  maxTurns: number;
  maxTokens: number | undefined;
  maxCostUsd: number | undefined;
}

/** What a run's input may carry under `budget`. */
export const BudgetOverride = v.optional(
  v.object({
    maxTurns: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000))),
    maxTokens: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    maxCostUsd: v.optional(v.pipe(v.number(), v.minValue(0))),
  }),
);
export type BudgetOverride = v.InferOutput<typeof BudgetOverride>;

/** What the loop has spent so far (kept in the run's state as `usage`). */
export interface Spent {
  turns: number;
  inputTokens: number;
  outputTokens: number;
  /** null once a call's cost was unknown (its model has no price). */
  costUsd: number | null;
}

export function resolveBudget(agent: Partial<Budget>, run: BudgetOverride | undefined): Budget {
  return {
    maxTurns: run?.maxTurns ?? agent.maxTurns ?? DEFAULT_MAX_TURNS,
    maxTokens: run?.maxTokens ?? agent.maxTokens,
    maxCostUsd: run?.maxCostUsd ?? agent.maxCostUsd,
  };
}

function exceeded(budget: keyof Budget, limit: number, used: number, unit: string): BatonError {
  return new BatonError('budget_exceeded', `budget ${budget} exceeded: ${used} ${unit} used, the limit is ${limit}`, {
    details: { budget, limit, used },
  });
}

/** Before a model call: another turn must fit, and nothing may already be over. */
export function checkBeforeTurn(b: Budget, s: Spent): BatonError | null {
  if (s.turns >= b.maxTurns) return exceeded('maxTurns', b.maxTurns, s.turns, 'turns');
  return checkSpent(b, s);
}

/** After a model call: tokens and cost so far within their limits. */
export function checkSpent(b: Budget, s: Spent): BatonError | null {
  const tokens = s.inputTokens + s.outputTokens;
  if (b.maxTokens !== undefined && tokens > b.maxTokens) return exceeded('maxTokens', b.maxTokens, tokens, 'tokens');
  if (b.maxCostUsd !== undefined) {
    if (s.costUsd === null) {
      return new BatonError('budget_exceeded', 'budget maxCostUsd cannot be kept: the model has no price (set BATON_PRICES)', {
        details: { budget: 'maxCostUsd', limit: b.maxCostUsd, used: null },
      });
    }
    if (s.costUsd > b.maxCostUsd) return exceeded('maxCostUsd', b.maxCostUsd, Math.round(s.costUsd * 1e6) / 1e6, 'USD');
  }
  return null;
}
