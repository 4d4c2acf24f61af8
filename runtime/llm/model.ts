/**
 * Chooses the model: any OpenAI-compatible endpoint when OPENAI_API_KEY is set
 * (OPENAI_BASE_URL, BATON_MODEL), otherwise the offline model. The provider's SDK loads
 * on the first call (or a worker's preload): processes that never call a model skip it.
 */
import type { OpenAIProvider } from '@ai-sdk/openai';
import type { LanguageModel } from 'ai';
import type { Config } from '../config.ts';
import { createHttpFetch } from './http-fetch.ts';
import { OFFLINE_MODEL_ID, createOfflineModel } from './offline.ts';

export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

export interface ResolvedModel {
  /** The configured model. */
  load(): Promise<LanguageModel>;
  id: string;
  /** For start-up banners: "offline model baton-offline" or "gpt-4o-mini at https://…". */
  description: string;
  offline: boolean;
  /** Another model of the same provider (an agent's own `model`); offline, every id is the offline model. */
  byId(id: string): Promise<LanguageModel>;
  /** The id of the model that answers when `id` is asked for (offline: the offline model's). */
  answersAs(id: string): string;
}

export function resolveModel(config: Pick<Config, 'openai'> & Partial<Pick<Config, 'concurrency'>>): ResolvedModel {
  const { apiKey, baseURL, model } = config.openai;
  if (!apiKey || model === OFFLINE_MODEL_ID) {
    const offline = Promise.resolve(createOfflineModel());
    return {
      load: () => offline,
      id: OFFLINE_MODEL_ID,
      description: `offline model ${OFFLINE_MODEL_ID}`,
      offline: true,
      byId: () => offline,
      answersAs: () => OFFLINE_MODEL_ID,
    };
  }
  const id = model ?? DEFAULT_OPENAI_MODEL;
  let provider: Promise<OpenAIProvider> | undefined;
  const of = async (modelId: string) => {
    // Over node:http with keep-alive connections, one per call in flight (http-fetch.ts).
    const p = await (provider ??= import('@ai-sdk/openai').then(({ createOpenAI }) =>
      createOpenAI({ apiKey, baseURL, fetch: createHttpFetch({ maxFreeSockets: config.concurrency }) }),
    ));
    // Chat Completions is the API every OpenAI-compatible server speaks (/responses is OpenAI's own).
    return config.openai.api === 'responses' ? p.responses(modelId) : p.chat(modelId);
  };
  let configured: Promise<LanguageModel> | undefined;
  return {
    load: () => (configured ??= of(id)),
    id,
    description: `${id} at ${baseURL ?? 'https://api.openai.com/v1'}${config.openai.api === 'responses' ? ' (Responses API)' : ''}`,
    offline: false,
    byId: (other) => (other === OFFLINE_MODEL_ID ? Promise.resolve(createOfflineModel()) : of(other)),
    answersAs: (other) => other,
  };
}
