/**
 * When a step's commit also writes a full snapshot of the run's state to `checkpoints`
 * (README "State, patches and snapshots"). Every step stores its patch; a snapshot only
 * makes later loads shorter, so it is taken by size, not by count: when the patches
 * written since the last snapshot weigh at least FRACTION of the state they built.
 *
 * Why that rule (state S bytes, patches since the last snapshot P bytes, d the patch per step):
 * - Bytes written: a snapshot is taken only once P ≥ FRACTION·S, so it costs at most
 *   P / FRACTION: snapshots add at most 8/7 of the patches' weight, whatever the run
 *   does. A transcript growing by d a step gets snapshots at geometrically spaced steps,
 *   about 0.65·d per step on average, 1.3·d at worst (a snapshot just before the end):
 *   never the whole transcript each step.
 * - Load: a claim reads the last snapshot plus the patches after it. For a growing state
 *   that is the state itself (S bytes); when patches replace keys, at most
 *   S_snapshot + FRACTION·S. Either way the cost follows the state's size, not the
 *   number of steps, so a long run's load grows only as its state does.
 * - The trade-off: a larger FRACTION writes fewer snapshots but replays more patch rows,
 *   which cost about 2.5× more per KB to load than one snapshot (so a load costs up to
 *   1 + 1.5·FRACTION ≈ 2.3× reading the state from a snapshot). At 7/8 a 2 KB-a-step
 *   transcript writes about 2.5× the delta per step in all (patch, snapshots, row overhead;
 *   at 3/4, 2.9×).
 *
 * Each patch row also counts ROW_WEIGHT (reading a row costs about what reading that many
 * bytes of a snapshot does), and no snapshot is due below MIN_WEIGHT: a run of tiny
 * patches replays at most MIN_WEIGHT / ROW_WEIGHT = 32 rows, and a small state is not
 * rewritten every step. BATON_SNAPSHOT_EVERY=K adds a snapshot at every K-th step.
 *
 * The sizes are JSON text lengths, tracked incrementally in memory beside the state (a
 * ledger per state object): each step costs the serialisation of its patch only. A state
 * loaded by a claim gets its ledger on first use, from one pass over the state and the
 * patches it was replayed from (store/claim.ts hands them to `replay`).
 */
import { type Patch, type State, isAppend, patchesReplayedInto } from '../state.ts';

export const FRACTION = 0.875;
export const ROW_WEIGHT = 256;
export const MIN_WEIGHT = 8 * 1024;

/** What the policy knows of a run's state and of the patches since its last snapshot. */
export interface Ledger {
  /** JSON length of each top-level key's `"key":value`. */
  keys: ReadonlyMap<string, number>;
  /** JSON length of the whole state. */
  stateBytes: number;
  /** Patches since the last snapshot: their JSON bytes plus ROW_WEIGHT each. */
  weight: number;
}

/** The rule itself: is a snapshot due after step `seq`, with this weight of patches since the last one? */
export function dueBySize(weight: number, stateBytes: number, seq: number, every: number | undefined): boolean {
  if (every !== undefined && (seq + 1) % every === 0) return true;
  return weight >= Math.max(FRACTION * stateBytes, MIN_WEIGHT);
}

const ledgers = new WeakMap<State, Ledger>();
/** The ledger after a decided step, keyed by the state it was decided on, until `carrySnapshotLedger`. */
const decided = new WeakMap<State, Ledger>();

/**
 * Decides whether the commit of `patch` on `state` (step `seq`) writes a snapshot, and
 * keeps the ledger of the resulting state for `carrySnapshotLedger`.
 */
export function snapshotDue(state: State, patch: Patch, seq: number, every: number | undefined): boolean {
  const before = ledgerOf(state);
  const after = applyToLedger(before, state, patch);
  const due = dueBySize(after.weight, after.stateBytes, seq, every);
  decided.set(state, due ? { ...after, weight: 0 } : after);
  return due;
}

/** Hands the ledger decided on `from` to `to`, the state the next step of this process starts from. */
export function carrySnapshotLedger(from: State, to: State): void {
  const ledger = decided.get(from);
  if (ledger) ledgers.set(to, ledger);
}

/** A state's ledger: carried from the step before, or built once from the state and its replay. */
export function ledgerOf(state: State): Ledger {
  const known = ledgers.get(state);
  if (known) return known;
  const keys = new Map<string, number>();
  for (const [key, value] of Object.entries(state)) {
    const text = JSON.stringify(value);
    if (text !== undefined) keys.set(key, JSON.stringify(key).length + 1 + text.length);
  }
  const patches = patchesReplayedInto(state) ?? [];
  const weight = patches.reduce((sum, p) => sum + (JSON.stringify(p)?.length ?? 4) + ROW_WEIGHT, 0);
  const ledger = { keys, stateBytes: stateLength(keys), weight };
  ledgers.set(state, ledger);
  return ledger;
}

/** The ledger after `patch` (applied as state.ts's applyPatch does), serialising only the patch. */
export function applyToLedger(ledger: Ledger, state: State, patch: Patch | null | undefined): Ledger {
  const keys = new Map(ledger.keys);
  let patchBytes = 2;
  for (const [key, value] of Object.entries(patch ?? {})) {
    const name = JSON.stringify(key).length + 1;
    if (isAppend(value)) {
      const items = value.$append.map((item) => (JSON.stringify(item) ?? 'null').length);
      const added = items.reduce((sum, n) => sum + n, 0) + items.length;
      patchBytes += name + 13 + added + (items.length === 0 ? 1 : 0) + 1;
      const current = state[key];
      const old = Array.isArray(current) ? (keys.get(key) ?? name + 2) : name + 2;
      // `[]` + n items: n - 1 commas, plus one more before them when the list had items.
      const commas = items.length === 0 ? 0 : Array.isArray(current) && current.length > 0 ? 0 : -1;
      keys.set(key, old + added + commas);
    } else {
      const text = JSON.stringify(value);
      if (text === undefined) keys.delete(key);
      else keys.set(key, name + text.length);
      patchBytes += name + (text?.length ?? 0) + 1;
    }
  }
  return { keys, stateBytes: stateLength(keys), weight: ledger.weight + patchBytes + ROW_WEIGHT };
}

function stateLength(keys: ReadonlyMap<string, number>): number {
  let total = 2 + Math.max(0, keys.size - 1);
  for (const n of keys.values()) total += n;
  return total;
}
