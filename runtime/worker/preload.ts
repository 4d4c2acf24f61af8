/**
 * Once a process that runs steps is ready, it loads in the background what its first
 * steps would otherwise wait for: the AI SDK and the model's provider, and the MCP
 * client when one of its functions declares tools. Start-up does not wait for them.
 */
import type { FunctionRegistry } from '../functions.ts';
import { loadAi } from '../llm/ai-sdk.ts';
import type { ResolvedModel } from '../llm/model.ts';
import { preloadMcpClient } from '../mcp/gateway.ts';

export function preloadStepLibraries(model: ResolvedModel, functions: FunctionRegistry): void {
  preloadMcpClient(functions);
  Promise.all([loadAi(), model.load()]).catch(() => {
    // Reported by the first model call, which awaits the same imports.
  });
}
