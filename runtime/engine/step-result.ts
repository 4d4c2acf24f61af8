/**
 * What a step returned, checked before it is committed: one of next/done/wait, naming
 * steps that exist, with a patch and output that are plain, storable JSON. A bad
 * result is a bug in the function, so it fails the step without a retry.
 */
import type { Agent, StepResult } from '../define.ts';
import { BatonError } from '../errors.ts';
import { unstorable } from '../json.ts';
import type { Patch } from '../state.ts';

/** Validates what a step returned; a bad result is a bug in the function, so it is not retried. */
export function checkResult(agent: Agent, stepName: string, result: unknown): StepResult | BatonError {
  const bad = (why: string) => new BatonError('invalid_step_result', `step "${stepName}" ${why}`);
  const r = result as StepResult | undefined;
  if (!r || typeof r !== 'object' || !['next', 'done', 'wait'].includes(r.type)) {
    return bad('must return next(step, patch), done(output) or wait(signal)');
  }
  if (r.type === 'next' && !agent.steps.has(r.step)) return bad(`handed on to "${r.step}", which is not a step of "${agent.name}"`);
  if (r.type === 'wait' && r.step !== undefined && !agent.steps.has(r.step)) return bad(`waits to resume "${r.step}", which is not a step`);
  if (r.type === 'wait' && (typeof r.signal !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(r.signal))) {
    return bad('waits for a signal whose name is not 1-100 letters, digits, "_", "." or "-"');
  }
  if (r.patch === null || typeof r.patch !== 'object' || Array.isArray(r.patch)) return bad('returned a patch that is not an object');
  let patch: Patch;
  let output: unknown;
  let request: unknown;
  try {
    patch = JSON.parse(JSON.stringify(r.patch)) as Patch;
    output = r.type === 'done' ? JSON.parse(JSON.stringify(r.output ?? null)) : undefined;
    request = r.type === 'wait' && r.request !== undefined ? JSON.parse(JSON.stringify(r.request)) : undefined;
  } catch (err) {
    return bad(`returned something that is not JSON: ${(err as Error).message}`);
  }
  const problem = unstorable(patch, 'patch') ?? unstorable(output, 'output') ?? unstorable(request, 'request');
  if (problem) return bad(`returned something that cannot be stored: ${problem}`);
  if (r.type === 'done') return { ...r, patch, output };
  if (r.type === 'wait' && request !== undefined) return { ...r, patch, request };
  return { ...r, patch };
}
