/**
 * Steps in flight in this process, by run, so a cancel notice can abort the
 * in-flight LLM or tool call within milliseconds (heartbeats catch it otherwise).
 */
import { BatonError } from '../errors.ts';

export interface Inflight {
  add(runId: string, controller: AbortController): void;
  remove(runId: string, controller: AbortController): void;
  cancel(runId: string): boolean;
  readonly size: number;
}

export function createInflight(): Inflight {
  const byRun = new Map<string, Set<AbortController>>();
  let size = 0;
  return {
    add(runId, controller) {
      let set = byRun.get(runId);
      if (!set) byRun.set(runId, (set = new Set()));
      set.add(controller);
      size++;
    },
    remove(runId, controller) {
      const set = byRun.get(runId);
      if (set?.delete(controller)) size--;
      if (set && set.size === 0) byRun.delete(runId);
    },
    cancel(runId) {
      const set = byRun.get(runId);
      if (!set) return false;
      for (const c of set) c.abort(new BatonError('cancelled', 'the run was cancelled'));
      return true;
    },
    get size() {
      return size;
    },
  };
}
