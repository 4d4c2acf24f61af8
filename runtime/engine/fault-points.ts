/**
 * Named moments inside a step where chaos tests make the process die (DBOS's
 * debugpoints). Armed only by BATON_FAULTS, e.g. `after-commit=0.05,during-call=0.1`:
 * at that point the process SIGKILLs itself with that probability. Unset, a fault
 * point costs one Map lookup.
 */
export const FAULT_POINTS = ['claimed', 'during-call', 'after-call', 'before-commit', 'after-commit'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

let armed: Map<string, number> | undefined;

function parse(spec: string | undefined): Map<string, number> {
  const map = new Map<string, number>();
  for (const part of (spec ?? '').split(',')) {
    const [name, p] = part.split('=');
    if (name && FAULT_POINTS.includes(name.trim() as FaultPoint)) map.set(name.trim(), Number(p ?? 1));
  }
  return map;
}

export function faultPoint(name: FaultPoint, where: { runId: string; seq: number }): void {
  armed ??= parse(process.env.BATON_FAULTS);
  const p = armed.get(name);
  if (p === undefined || Math.random() >= p) return;
  process.stderr.write(`${JSON.stringify({ fault: name, runId: where.runId, seq: where.seq, pid: process.pid })}\n`);
  process.kill(process.pid, 'SIGKILL');
}
