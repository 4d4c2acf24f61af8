/**
 * Figures and the one table every bench part prints. Each figure can be set against
 * the physical floor (bench/parts/floor.ts): "× floor" is how many times the floor's
 * cost it is, 1.0 being as cheap as one bare transition on this machine. A time per
 * step is divided by the floor's sequential time; a rate is the floor's rate at
 * concurrency 10 divided by it.
 */
import os from 'node:os';

export type Unit = 'ms' | 's' | 'steps/s' | 'req/s' | 'B' | 'MB' | 'conns' | '×';

export interface Figure {
  part: string;
  label: string;
  value: number;
  unit: Unit;
  /** How the figure relates to the floor: a time per transition, or a rate of transitions. */
  vsFloor?: 'time' | 'rate';
  /** Printed beside the figure: a peer's value and the ratio, a target, the spread. */
  note?: string;
}

/** The physical floor of one step transition (see bench/parts/floor.ts). */
export interface Floor {
  /** Median time of one transition, one at a time (ms). */
  seqMs: number;
  /** Transitions per second with 10 at once. */
  c10PerSec: number;
}

export function floorRatio(f: Figure, floor: Floor | undefined): string {
  if (!floor || !f.vsFloor || !(f.value > 0)) return '';
  const r = f.vsFloor === 'time' ? f.value / floor.seqMs : floor.c10PerSec / f.value;
  return `${r < 10 ? r.toFixed(1) : r.toFixed(0)}×`;
}

export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'ms':
      return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')} ms`;
    case 's':
      return `${value.toFixed(1)} s`;
    case 'B':
      return value >= 10_000 ? `${(value / 1024).toFixed(1)} KB` : `${Math.round(value).toLocaleString('en-US')} B`;
    case 'MB':
      return `${Math.round(value)} MB`;
    case '×':
      return `${value.toFixed(2)}×`;
    default:
      return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
  }
}

/** A markdown table (it pastes into bench/README.md as it is). */
export function renderTable(figures: readonly Figure[], floor: Floor | undefined): string {
  const rows = figures.map((f) => [f.part, f.label, formatValue(f.value, f.unit), floorRatio(f, floor), f.note ?? '']);
  const lines = ['| part | figure (median) | value | × floor | beside it |', '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`);
  return lines.join('\n');
}

/** What the figures were measured on, for the line above the table. */
export function machine(extra: Record<string, string> = {}): string {
  const cpus = os.cpus();
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const parts = [
    new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}`,
    `${Math.round(os.totalmem() / 2 ** 30)} GB RAM`,
    `Node ${process.version}`,
    ...Object.entries(extra).map(([k, v]) => `${k} ${v}`),
    `load average ${load}`,
  ];
  return parts.join(' · ');
}

/** Progress goes to stderr, so stdout holds only the table. */
export const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`);
