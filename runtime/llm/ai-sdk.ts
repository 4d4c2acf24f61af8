/**
 * The AI SDK, loaded when a step first calls a model (or when a worker preloads it once it
 * is ready): the API, and tools that never call a model, do without its ~100 modules.
 */
import type * as AiModule from 'ai';

export type Ai = typeof AiModule;

let loading: Promise<Ai> | undefined;

export function loadAi(): Promise<Ai> {
  return (loading ??= import('ai'));
}
