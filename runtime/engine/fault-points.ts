/**
 * Named moments inside a step where chaos tests make the process die (DBOS's
 * debugpoints). Armed by BATON_FAULTS, e.g. `after-commit=0.05,during-call=0.1`, and
 * only when BATON_TEST_HOOKS=1 is set as well, so a stray BATON_FAULTS in a
 * production environment arms nothing: at that point the process SIGKILLs itself
 * with that probability. `name=stop` instead freezes the process (SIGSTOP) the first
 * time it gets there, so a test can hold a worker exactly at that moment, past its
 * lease, and SIGCONT it later (a zombie). `name@step=…` arms the moment only in the
 * step of that name (say `after-call@join=1`, to die inside a fan-out's join and not in
 * its branches). `name=#N` kills the process the Nth time it gets there (say
 * `claimed=#3`: at the third claim, one a worker made in process after a commit).
 * `after-last-branch` is the moment between the commit of a fan-out's
 * last branch and the publish of its join. Each fault is announced as one JSON line on
 * stderr before it happens. Unarmed, a fault point costs one or two Map lookups.
 */
export const FAULT_POINTS = ['claimed', 'during-call', 'after-call', 'before-commit', 'after-commit', 'after-last-branch'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

export interface Fault {
  probability: number;
  signal: 'SIGKILL' | 'SIGSTOP';
  /** Only the Nth time the moment is reached (`name=#N`). */
  nth?: number;
}

let armed = new Map<string, Fault>();
/** How often each armed moment was reached (for `#N`). */
const reached = new Map<string, number>();

export function parseFaults(spec: string | undefined): Map<string, Fault> {
  const map = new Map<string, Fault>();
  for (const part of (spec ?? '').split(',')) {
    const [rawName, rawValue] = part.split('=');
    const name = rawName?.trim();
    const point = name?.split('@')[0];
    if (!name || !FAULT_POINTS.includes(point as FaultPoint) || /@$/.test(name)) continue;
    const value = (rawValue ?? '1').trim();
    const nth = /^#(\d+)$/.exec(value);
    if (value === 'stop') map.set(name, { probability: 1, signal: 'SIGSTOP' });
    else if (nth && Number(nth[1]) >= 1) map.set(name, { probability: 1, signal: 'SIGKILL', nth: Number(nth[1]) });
    else if (Number.isFinite(Number(value))) map.set(name, { probability: Number(value), signal: 'SIGKILL' });
  }
  return map;
}

/**
 * Arms this process's fault points from `BATON_FAULTS` (`spec`), but only with the
 * test flag. Returns the warning the process must print at start, or null when
 * there is nothing to say.
 */
export function armFaultPoints(spec: string | undefined, testHooks: boolean): string | null {
  const faults = parseFaults(spec);
  if (!spec?.trim()) {
    armed = faults;
    return null;
  }
  if (!testHooks) {
    armed = new Map();
    return `WARNING: BATON_FAULTS is set ("${spec}") but ignored: fault points are for tests and arm only with BATON_TEST_HOOKS=1.`;
  }
  armed = faults;
  const list = [...faults].map(([name, f]) => `${name}=${f.signal === 'SIGSTOP' ? 'stop' : f.nth ? `#${f.nth}` : f.probability}`).join(', ') || 'none recognised';
  return `WARNING: fault points ARMED (${list}): this process will kill or freeze itself on purpose. Test use only; never set BATON_TEST_HOOKS in production.`;
}

export function faultPoint(name: FaultPoint, where: { runId: string; seq: number; step?: string }): void {
  if (armed.size === 0) return;
  const key = where.step !== undefined && armed.has(`${name}@${where.step}`) ? `${name}@${where.step}` : name;
  const fault = armed.get(key);
  if (fault === undefined) return;
  if (fault.nth !== undefined) {
    const times = (reached.get(key) ?? 0) + 1;
    reached.set(key, times);
    if (times !== fault.nth) return;
  } else if (Math.random() >= fault.probability) return;
  // A stop happens once: after SIGCONT the process carries on like any zombie would.
  if (fault.signal === 'SIGSTOP') armed.delete(key);
  process.stderr.write(
    `${JSON.stringify({ fault: name, signal: fault.signal, runId: where.runId, seq: where.seq, step: where.step, pid: process.pid })}\n`,
  );
  process.kill(process.pid, fault.signal);
}
