/**
 * How far V8 lets a step-running process's old generation grow past its live size before
 * the next full collection. A worker's steps wait seconds on their model or tool, so what
 * a step allocates before its call survives the young generation and dies old; V8's own
 * factor (up to 4× the live size, within a limit sized from the host's memory) then lets a
 * worker driving a thousand waiting agents hold a heap mostly of such garbage. A fixed
 * factor of 1 + percent/100 bounds it: 1,000 waiting agents, peak RSS ~335 → ~245 MB at 50%
 * for a few percent more CPU (bench/README.md, agents part). 0 leaves V8's own heuristics.
 */
import v8 from 'node:v8';

export function setHeapGrowth(percent: number): void {
  // Read at every full collection, so it applies from here on (not only to a fresh heap).
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
}
