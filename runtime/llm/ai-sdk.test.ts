import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '../..');
const at = (rel: string) => JSON.stringify(path.join(ROOT, rel));

test('the AI SDK and the provider load on the first model call, not with the API or the platform', async () => {
  // A child process: which packages it resolves, before and after the model is first used.
  const code = `
    import module from 'node:module';
    const seen = new Set();
    module.registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.add(r.url); return r; } });
    const sdk = () => [...seen].filter((u) => /\\/node_modules\\/(ai|@ai-sdk\\/openai)\\//.test(u)).length;
    await import(${at('runtime/platform.ts')});
    await import(${at('runtime/api/app.ts')});
    const { resolveModel } = await import(${at('runtime/llm/model.ts')});
    const model = resolveModel({ openai: { apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1', model: 'm', api: 'chat' }, concurrency: 4 });
    const before = sdk();
    const { loadAi } = await import(${at('runtime/llm/ai-sdk.ts')});
    const [ai, loaded] = await Promise.all([loadAi(), model.load()]);
    console.log(JSON.stringify({ before, after: sdk(), modelId: loaded.modelId, generateText: typeof ai.generateText }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT });
  const r = JSON.parse(stdout) as { before: number; after: number; modelId: string; generateText: string };
  assert.equal(r.before, 0, 'nothing of the AI SDK loaded with the platform and the API');
  assert.ok(r.after > 0);
  assert.equal(r.modelId, 'm');
  assert.equal(r.generateText, 'function');
});
