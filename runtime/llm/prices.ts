/**
 * What a model call cost: a price per model, in US dollars per million input and output
 * tokens. Built in for common OpenAI models (list prices as of late 2026; check
 * https://openai.com/api/pricing), overridden or extended by BATON_PRICES, JSON such as
 * `{"gpt-4o-mini":{"input":0.15,"output":0.6}}` (or `[0.15, 0.6]`). The offline model is
 * free. An unpriced model's cost is unknown (NULL), never a made-up zero.
 */
export interface Price {
  /** US dollars per million input tokens. */
  input: number;
  /** US dollars per million output tokens. */
  output: number;
}

export type PriceTable = Readonly<Record<string, Price>>;

export const BUILT_IN_PRICES: PriceTable = {
  'baton-offline': { input: 0, output: 0 },
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  o3: { input: 2, output: 8 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
};

const isPrice = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** The built-in table with BATON_PRICES applied; a malformed value is an error naming the model. */
export function parsePrices(json: string | undefined): PriceTable {
  const table: Record<string, Price> = { ...BUILT_IN_PRICES };
  if (!json) return table;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error('BATON_PRICES must be JSON like {"gpt-4o-mini":{"input":0.15,"output":0.6}} (US dollars per million tokens)');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('BATON_PRICES must be a JSON object of model → price');
  for (const [model, value] of Object.entries(parsed as Record<string, unknown>)) {
    const pair = Array.isArray(value) ? value : value && typeof value === 'object' ? [(value as Price).input, (value as Price).output] : [];
    if (pair.length !== 2 || !pair.every(isPrice)) {
      throw new Error(`BATON_PRICES: "${model}" must be {"input": n, "output": n} in US dollars per million tokens`);
    }
    table[model] = { input: pair[0] as number, output: pair[1] as number };
  }
  return table;
}

/** The price of `model`: exact id first, then without a date suffix (`gpt-4o-2024-08-06` → `gpt-4o`). */
export function priceOf(table: PriceTable, model: string): Price | null {
  return table[model] ?? table[model.replace(/-\d{4}-\d{2}-\d{2}$/, '')] ?? null;
}

/** US dollars for one call, or null when the model has no price. */
export function costUsd(table: PriceTable, model: string, inputTokens: number | null | undefined, outputTokens: number | null | undefined): number | null {
  const price = priceOf(table, model);
  if (!price) return null;
  return ((inputTokens ?? 0) * price.input + (outputTokens ?? 0) * price.output) / 1e6;
}
