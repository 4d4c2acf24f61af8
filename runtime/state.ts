/**
 * Run state and patches. A step returns a patch: each top-level key replaces the
 * state's key, except `{ "$append": [...] }`, which appends to a list. Patches are
 * stored on the step row, so bytes written per step follow the size of the change.
 */
export type State = Record<string, unknown>;

export interface AppendOp {
  $append: unknown[];
}
export type Patch = Record<string, unknown>;

/** Marks a patch value as "append these items to the list at this key". */
export function append(...items: unknown[]): AppendOp {
  return { $append: items };
}

export function isAppend(value: unknown): value is AppendOp {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    Array.isArray((value as AppendOp).$append)
  );
}

/** Applies one patch, returning a new state object (the input is not modified). */
export function applyPatch(state: State, patch: Patch | null | undefined): State {
  if (!patch) return state;
  const out: State = { ...state };
  for (const [key, value] of Object.entries(patch)) {
    if (isAppend(value)) {
      const current = out[key];
      out[key] = [...(Array.isArray(current) ? current : []), ...value.$append];
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** The patches each replayed state was built from since its snapshot (engine/snapshot-policy.ts weighs them). */
const replayed = new WeakMap<State, ReadonlyArray<Patch | null>>();

/** State for a step: the last snapshot plus the patches written after it, in order. */
export function replay(snapshot: State | null, patches: ReadonlyArray<Patch | null>): State {
  // One copy, then appends in place: linear in the state's size, however many patches.
  const state: State = { ...snapshot };
  const lists = new Set<string>();
  for (const patch of patches) {
    for (const [key, value] of Object.entries(patch ?? {})) {
      if (!isAppend(value)) {
        state[key] = value;
        lists.delete(key);
      } else if (lists.has(key)) {
        (state[key] as unknown[]).push(...value.$append);
      } else {
        const current = state[key];
        state[key] = [...(Array.isArray(current) ? current : []), ...value.$append];
        lists.add(key);
      }
    }
  }
  replayed.set(state, patches);
  return state;
}

/** The patches `replay` built this state from after its snapshot, if it came from a replay. */
export function patchesReplayedInto(state: State): ReadonlyArray<Patch | null> | undefined {
  return replayed.get(state);
}
