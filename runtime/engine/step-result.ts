/**
 * What a step returned, checked before it is committed: one of next/done/wait/parallel,
 * naming steps that exist, with a patch and output that are plain, storable JSON (a
 * branch of a fan-out must end with done). A bad result is a bug in the function, so
 * it fails the step without a retry.
 */
import type { Agent, StepResult } from '../define.ts';
import { BatonError } from '../errors.ts';
import { unstorable } from '../json.ts';
import type { Patch } from '../state.ts';

/** Branches one fan-out may start: each is a row, a message and a claim. */
export const MAX_BRANCHES = 100;

/** Validates what a step returned; a bad result is a bug in the function, so it is not retried. */
export function checkResult(agent: Agent, stepName: string, result: unknown, isBranch = false): StepResult | BatonError {
  const bad = (why: string) => new BatonError('invalid_step_result', `step "${stepName}" ${why}`);
  const r = result as StepResult | undefined;
  if (!r || typeof r !== 'object' || !['next', 'done', 'wait', 'parallel'].includes(r.type)) {
    return bad('must return next(step, patch), done(output), wait(signal) or parallel(branches, { join })');
  }
  if (isBranch && r.type !== 'done') return bad(`is a branch of a fan-out and must end with done(output, patch?), not ${r.type}()`);
  if (r.type === 'parallel') {
    const problem = checkParallel(agent, r);
    if (problem) return bad(problem);
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
    if (r.type === 'parallel') {
      const branches = r.branches.map((b) => ({ step: b.step, input: JSON.parse(JSON.stringify(b.input ?? null)) as unknown }));
      const problem = unstorable(patch, 'patch') ?? unstorable(branches, 'branches');
      if (problem) return bad(`returned something that cannot be stored: ${problem}`);
      return { ...r, patch, branches };
    }
  } catch (err) {
    return bad(`returned something that is not JSON: ${(err as Error).message}`);
  }
  const problem = unstorable(patch, 'patch') ?? unstorable(output, 'output') ?? unstorable(request, 'request');
  if (problem) return bad(`returned something that cannot be stored: ${problem}`);
  if (r.type === 'done') return { ...r, patch, output };
  if (r.type === 'wait' && request !== undefined) return { ...r, patch, request };
  return { ...r, patch };
}

function checkParallel(agent: Agent, r: Extract<StepResult, { type: 'parallel' }>): string | null {
  if (!Array.isArray(r.branches) || r.branches.length === 0) return 'fanned out to no branches (parallel needs at least one)';
  if (r.branches.length > MAX_BRANCHES) return `fanned out to ${r.branches.length} branches (at most ${MAX_BRANCHES})`;
  for (const [i, b] of r.branches.entries()) {
    if (!b || typeof b !== 'object' || typeof b.step !== 'string') return `gave branch ${i + 1} no step name`;
    if (!agent.steps.has(b.step)) return `fanned out to "${b.step}" (branch ${i + 1}), which is not a step of "${agent.name}"`;
  }
  if (typeof r.join !== 'string' || !agent.steps.has(r.join)) return `joins at "${String(r.join)}", which is not a step of "${agent.name}"`;
  if (r.onBranchFailure !== 'fail' && r.onBranchFailure !== 'continue') return 'gave onBranchFailure a value other than "fail" or "continue"';
  return null;
}
