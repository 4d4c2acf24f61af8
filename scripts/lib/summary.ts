/**
 * The line `baton run --follow` ends with: steps, attempts, tokens, cost when it is
 * known, wall time. The API prices every LLM call (BATON_PRICES on the server, README
 * "Cost") and its totals are used; against an older API that sends none, the client
 * prices the steps itself from BATON_MODEL_PRICES: JSON `{ "model": [input, output] }`
 * in US dollars per million tokens.
 */
import { OFFLINE_MODEL_ID } from '../../runtime/llm/offline.ts';

export interface StepView {
  seq: number;
  name: string;
  /** A fan-out's branch (1..K), shown beside the name: branches run side by side. */
  branch?: number | null;
  kind: string | null;
  status: string;
  attempt: number;
  durationMs: number | null;
  startedAt?: string | null;
  error?: { code?: string; message?: string } | null;
  usage: { model: string; inputTokens: number | null; outputTokens: number | null; costUsd?: number | null } | null;
  /** What an agent step added to the conversation, in one line (absent from older APIs). */
  summary?: string | null;
}

export interface RunView {
  id: string;
  function: string;
  status: string;
  output: unknown;
  error: unknown;
  createdAt: string;
  finishedAt: string | null;
  steps: StepView[];
  /** The API's totals over every attempt, priced server-side (BATON_PRICES); absent from older APIs. */
  usage?: { inputTokens: number; outputTokens: number; costUsd: number | null };
}

export interface RunSummary {
  id: string;
  status: string;
  steps: number;
  attempts: number;
  inputTokens: number;
  outputTokens: number;
  /** US dollars; null when a model's price is unknown. */
  costUsd: number | null;
  wallMs: number | null;
}

export type Prices = Record<string, readonly [number, number]>;

/** BATON_MODEL_PRICES, checked; the offline model costs nothing. */
export function pricesFrom(env: NodeJS.ProcessEnv = process.env): Prices {
  const prices: Record<string, readonly [number, number]> = { [OFFLINE_MODEL_ID]: [0, 0] };
  if (!env.BATON_MODEL_PRICES) return prices;
  let parsed: unknown;
  try {
    parsed = JSON.parse(env.BATON_MODEL_PRICES);
  } catch {
    throw new Error('BATON_MODEL_PRICES must be JSON like {"gpt-4o-mini":[0.15,0.6]} (US dollars per million input and output tokens)');
  }
  for (const [model, pair] of Object.entries(parsed as Record<string, unknown>)) {
    if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((n) => typeof n === 'number' && n >= 0)) {
      throw new Error(`BATON_MODEL_PRICES: "${model}" must be [input, output] in US dollars per million tokens`);
    }
    prices[model] = [pair[0], pair[1]];
  }
  return prices;
}

export function summarize(run: RunView, prices: Prices): RunSummary {
  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd: number | null = 0;
  for (const s of run.steps) {
    if (!s.usage) continue;
    const input = s.usage.inputTokens ?? 0;
    const output = s.usage.outputTokens ?? 0;
    inputTokens += input;
    outputTokens += output;
    const price = prices[s.usage.model];
    costUsd = price && costUsd !== null ? costUsd + (input * price[0] + output * price[1]) / 1e6 : null;
  }
  if (run.usage) {
    // The API's own totals: every attempt counted, priced where the cost was incurred.
    inputTokens = run.usage.inputTokens;
    outputTokens = run.usage.outputTokens;
    costUsd = run.usage.costUsd;
  }
  return {
    id: run.id,
    status: run.status,
    steps: run.steps.length,
    // A step's attempt number counts its failed attempts too; a crash re-runs the same attempt.
    attempts: run.steps.reduce((n, s) => n + s.attempt, 0),
    inputTokens,
    outputTokens,
    costUsd,
    wallMs: run.finishedAt ? new Date(run.finishedAt).getTime() - new Date(run.createdAt).getTime() : null,
  };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function formatSummary(s: RunSummary): string {
  const parts = [
    `${s.steps} step${s.steps === 1 ? '' : 's'}`,
    `${s.attempts} attempt${s.attempts === 1 ? '' : 's'}`,
    `${s.inputTokens} input + ${s.outputTokens} output tokens`,
  ];
  if (s.costUsd !== null) parts.push(`cost $${s.costUsd.toFixed(s.costUsd > 0 && s.costUsd < 0.01 ? 4 : 2)}`);
  if (s.wallMs !== null) parts.push(formatDuration(s.wallMs));
  return `run ${s.status}: ${parts.join(', ')}`;
}
