/**
 * Chooses the model: any OpenAI-compatible endpoint when OPENAI_API_KEY is set
 * (OPENAI_BASE_URL, BATON_MODEL), otherwise the offline model.
 */
import { createOpenAI } from '@ai-sdk/openai';
import type { LanguageModel } from 'ai';
import type { Config } from '../config.ts';
import { OFFLINE_MODEL_ID, createOfflineModel } from './offline.ts';

export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';

export interface ResolvedModel {
  model: LanguageModel;
  id: string;
  /** For start-up banners: "offline model baton-offline" or "gpt-4o-mini at https://…". */
  description: string;
  offline: boolean;
}

export function resolveModel(config: Pick<Config, 'openai'>): ResolvedModel {
  const { apiKey, baseURL, model } = config.openai;
  if (!apiKey || model === OFFLINE_MODEL_ID) {
    return { model: createOfflineModel(), id: OFFLINE_MODEL_ID, description: `offline model ${OFFLINE_MODEL_ID}`, offline: true };
  }
  const id = model ?? DEFAULT_OPENAI_MODEL;
  const provider = createOpenAI({ apiKey, baseURL });
  // Chat Completions is the API every OpenAI-compatible server speaks (/responses is OpenAI's own).
  return { model: provider.chat(id), id, description: `${id} at ${baseURL ?? 'https://api.openai.com/v1'}`, offline: false };
}
