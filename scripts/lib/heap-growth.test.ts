import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

/**
 * A process whose objects outlive the young generation and then die (a worker's steps
 * across their model waits): its peak heap with the worker's setting against V8's own.
 * Collections are deterministic for one allocation pattern, so the gap is wide and stable.
 */
function peakHeapMb(percent: number): number {
  const script = `
    import { setHeapGrowth } from ${JSON.stringify(new URL('./heap-growth.ts', import.meta.url).href)};
    setHeapGrowth(${percent});
    const ring = new Array(200_000);
    let peak = 0;
    for (let i = 0; i < 3_000_000; i++) {
      ring[i % ring.length] = { i, s: 'x'.repeat(64) + i, a: [i, i + 1] };
      if (i % 1000 === 0) peak = Math.max(peak, process.memoryUsage().heapTotal);
    }
    console.log(peak / 1048576);`;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim());
}

test('the worker setting keeps old garbage near the live size; 0 leaves V8 its own growth', () => {
  const own = peakHeapMb(0);
  const bounded = peakHeapMb(50);
  assert.ok(bounded < 0.75 * own, `peak heap ${bounded.toFixed(0)} MB with 50%, ${own.toFixed(0)} MB with V8's own growth`);
});
