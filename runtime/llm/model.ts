/**
 * Chooses the model: any OpenAI-compatible endpoint when OPENAI_API_KEY is set
 * (OPENAI_BASE_URL, BATON_MODEL), otherwise the offline model.
 */
import { createOpenAI } from '@ai-sdk/openai';
import type { LanguageModel } from 'ai';
import type { Config } from '../config.ts';
import { createHttpFetch } from './http-fetch.ts';
import { OFFLINE_MODEL_ID, createOfflineModel } from './offline.ts';

export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

export interface ResolvedModel {
  model: LanguageModel;
  id: string;
  /** For start-up banners: "offline model baton-offline" or "gpt-4o-mini at https://…". */
  description: string;
  offline: boolean;
  /** Another model of the same provider (an agent's own `model`); offline, every id is the offline model. */
  byId(id: string): LanguageModel;
}

export function resolveModel(config: Pick<Config, 'openai'> & Partial<Pick<Config, 'concurrency'>>): ResolvedModel {
  const { apiKey, baseURL, model } = config.openai;
  if (!apiKey || model === OFFLINE_MODEL_ID) {
    const offline = createOfflineModel();
    return { model: offline, id: OFFLINE_MODEL_ID, description: `offline model ${OFFLINE_MODEL_ID}`, offline: true, byId: () => offline };
  }
  const id = model ?? DEFAULT_OPENAI_MODEL;
  // Over node:http with keep-alive connections, one per call in flight (http-fetch.ts).
  const provider = createOpenAI({ apiKey, baseURL, fetch: createHttpFetch({ maxFreeSockets: config.concurrency }) });
  // Chat Completions is the API every OpenAI-compatible server speaks (/responses is OpenAI's own).
  const of = (modelId: string) => (config.openai.api === 'responses' ? provider.responses(modelId) : provider.chat(modelId));
  return {
    model: of(id),
    id,
    description: `${id} at ${baseURL ?? 'https://api.openai.com/v1'}${config.openai.api === 'responses' ? ' (Responses API)' : ''}`,
    offline: false,
    byId: (other) => (other === OFFLINE_MODEL_ID ? createOfflineModel() : of(other)),
  };
}
