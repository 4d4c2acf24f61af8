import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Patch, type State, append, applyPatch, replay } from '../state.ts';
import { FRACTION, MIN_WEIGHT, ROW_WEIGHT, applyToLedger, carrySnapshotLedger, dueBySize, ledgerOf, snapshotDue } from './snapshot-policy.ts';

const json = (s: State) => JSON.stringify(s).length;

/** Runs `steps` patches through the policy as a chain of continued steps does; what was written and read. */
function simulate(steps: number, patchAt: (seq: number) => Patch, every?: number) {
  let state: State = replay(null, []);
  let patchBytes = 0;
  let snapshotBytes = 0;
  let snapshots = 0;
  let sinceRows = 0;
  let sinceBytes = 0;
  let lastSnapshotBytes = 0;
  let worstLoad = 0;
  let worstRows = 0;
  for (let seq = 0; seq < steps; seq++) {
    const patch = patchAt(seq);
    const due = snapshotDue(state, patch, seq, every);
    const next = applyPatch(state, patch);
    carrySnapshotLedger(state, next);
    state = next;
    patchBytes += JSON.stringify(patch).length;
    sinceRows++;
    sinceBytes += JSON.stringify(patch).length;
    if (due) {
      snapshots++;
      snapshotBytes += json(state);
      lastSnapshotBytes = json(state);
      sinceRows = 0;
      sinceBytes = 0;
    }
    // What a claim of the next step would read: the last snapshot and the patches after it.
    worstLoad = Math.max(worstLoad, (lastSnapshotBytes + sinceBytes) / Math.max(json(state), 1));
    worstRows = Math.max(worstRows, sinceRows);
  }
  return { state, patchBytes, snapshotBytes, snapshots, worstLoad, worstRows };
}

const message = (bytes: number) => (seq: number): Patch => ({ messages: append({ role: seq % 2 ? 'assistant' : 'user', content: 'x'.repeat(bytes) }) });

test('the ledger tracks the JSON size of the state exactly, from the patch alone', () => {
  const patches: Patch[] = [
    { a: 1, list: append('x', 'yy') },
    { list: append() },
    { list: append({ k: 'v' }), b: 'text' },
    { a: { nested: [1, 2] }, empty: append() },
    { b: undefined, scalar: 5 },
    { scalar: append(1, undefined, 'z') },
    { list: [9], 'we"ird': 'key' },
    { list: append(10), a: null },
  ];
  let state: State = {};
  let ledger = ledgerOf(state);
  for (const patch of patches) {
    ledger = applyToLedger(ledger, state, patch);
    state = applyPatch(state, patch);
    assert.equal(ledger.stateBytes, json(state), `after ${JSON.stringify(patch)}`);
  }
});

test('a claimed state is weighed from its replay: the patches since the snapshot, once', () => {
  const patches = [{ m: append('a'.repeat(100)) }, null, { n: 1 }];
  const state = replay({ m: ['start'] }, patches);
  const ledger = ledgerOf(state);
  assert.equal(ledger.stateBytes, json(state));
  assert.equal(ledger.weight, patches.reduce((sum, p) => sum + JSON.stringify(p).length + ROW_WEIGHT, 0));
  assert.equal(ledgerOf(replay({ m: ['start'] }, [])).weight, 0, 'right after a snapshot: nothing to weigh');
});

test('the rule: below MIN_WEIGHT never (a small state is not rewritten every step), then a fraction of the state', () => {
  assert.equal(dueBySize(MIN_WEIGHT - 1, 10, 5, undefined), false);
  assert.equal(dueBySize(MIN_WEIGHT, 10, 5, undefined), true);
  const state = MIN_WEIGHT * 4;
  assert.equal(dueBySize(FRACTION * state - 1, state, 5, undefined), false);
  assert.equal(dueBySize(FRACTION * state, state, 5, undefined), true);
  assert.equal(dueBySize(0, 10, 7, 8), true, 'BATON_SNAPSHOT_EVERY=8: every 8th step as well');
  assert.equal(dueBySize(0, 10, 6, 8), false);
});

test('a transcript growing 2 KB a step: snapshots add at most 1/FRACTION of the patches (by weight), geometrically spaced', () => {
  for (const steps of [20, 50, 200, 333, 1000]) {
    const r = simulate(steps, message(2048));
    assert.ok(r.snapshotBytes <= (r.patchBytes + steps * ROW_WEIGHT) / FRACTION, `${steps} steps: snapshots ${r.snapshotBytes} B for patches ${r.patchBytes} B`);
    assert.ok(r.snapshots <= Math.ceil(Math.log(steps) / Math.log(1 / (1 - FRACTION))) + 2, `${steps} steps: ${r.snapshots} snapshots`);
    // A claim reads the state once (snapshot + the patches after it), whatever the step.
    assert.ok(r.worstLoad <= 1.05, `${steps} steps: a load reads ${r.worstLoad.toFixed(2)}× the state`);
  }
  // Today's rule, for contrast: a snapshot every 8 steps writes the transcript over and over.
  const every8 = simulate(200, message(2048), 8);
  assert.ok(every8.snapshotBytes > 10 * every8.patchBytes);
});

test('patches that replace the state: snapshots stay within the bound, loads within (1 + FRACTION)× the state', () => {
  const r = simulate(500, (seq) => ({ summary: `${seq}:`.padEnd(4000, 's'), turn: seq }));
  assert.ok(r.snapshotBytes <= (r.patchBytes + 500 * ROW_WEIGHT) / FRACTION, `snapshots ${r.snapshotBytes} B for patches ${r.patchBytes} B`);
  assert.ok(r.worstLoad <= 1 + FRACTION + MIN_WEIGHT / json(r.state), `a load reads ${r.worstLoad.toFixed(2)}× the state`);
});

test('tiny patches: a load replays at most MIN_WEIGHT / ROW_WEIGHT rows', () => {
  const r = simulate(1000, (seq) => ({ n: seq }));
  assert.ok(r.worstRows <= MIN_WEIGHT / ROW_WEIGHT, `${r.worstRows} rows`);
  assert.ok(r.snapshots >= 1000 / (MIN_WEIGHT / ROW_WEIGHT) - 1);
});
