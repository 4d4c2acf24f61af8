/**
 * The side-effect ledger of tool servers (README "The tool ledger"): one row per
 * side effect, keyed by the step's idempotency key (`run_id:seq`), shared by every
 * replica of every tool server that points at the same ledger database.
 *
 *   reserve  an atomic insert claims the key before anything is done; one replica wins
 *   act      the winner performs the side effect, extending its lease while it works
 *   done     the row gets the result (or the error) and who, what, when
 *
 * A replica that finds the key reserved by a live holder waits (bounded) for the
 * result instead of acting. A reservation whose holder died (lease expired) or whose
 * attempt failed is taken over, and the new holder first asks the remote whether the
 * effect already happened (`recover`, e.g. the GitHub marker search) before acting
 * again. The same key with another tool or other arguments is `idempotency_conflict`.
 *
 * Without BATON_TOOL_LEDGER_URL a server keeps the ledger in memory: calls in one
 * process still wait for each other, and every first call asks the remote (`recover`)
 * since nothing else survives a restart. That is for one replica on one machine.
 */

export interface LedgerEntry {
  /** The idempotency key, `run_id:seq`. */
  key: string;
  server: string;
  tool: string;
  /** Digest of the call's arguments (tools/lib/digest.ts). */
  argsDigest: string;
  tenant: string | null;
}

export interface SideEffect<T> {
  /** Performs the side effect once. */
  act(): Promise<T>;
  /** Finds the effect of an earlier attempt at the remote; null when there is none. */
  recover(): Promise<T | null>;
}

export interface LedgerOutcome<T> {
  result: T;
  /** True when this call did not perform the effect (an earlier one did). */
  replayed: boolean;
}

export interface Ledger {
  /** Where the ledger lives, for logs (never the credentials). */
  readonly kind: 'postgres' | 'memory';
  once<T>(entry: LedgerEntry, effect: SideEffect<T>): Promise<LedgerOutcome<T>>;
  /** null when the ledger can be used, else why not (for `/readyz`). */
  problem(): Promise<string | null>;
  close(): Promise<void>;
}

/** The same key with another tool or other arguments: refused, never the first result. */
export class IdempotencyConflict extends Error {
  readonly code = 'idempotency_conflict';
  constructor(entry: LedgerEntry, recorded: { server: string; tool: string; argsDigest: string }) {
    const what =
      recorded.server !== entry.server || recorded.tool !== entry.tool
        ? `${recorded.server}.${recorded.tool}, not ${entry.server}.${entry.tool}`
        : `arguments ${recorded.argsDigest}, not ${entry.argsDigest}`;
    super(`idempotency_conflict: key ${entry.key} was used for ${what}; a key names one call with one set of arguments`);
    this.name = 'IdempotencyConflict';
  }
}

/** Another replica holds the key and is still working on it after the wait: try again later. */
export class LedgerBusy extends Error {
  readonly code = 'ledger_busy';
  constructor(key: string, waitedMs: number) {
    super(`ledger_busy: another replica is still performing the side effect of ${key} after ${waitedMs} ms; retry later`);
    this.name = 'LedgerBusy';
  }
}

const conflicts = (a: LedgerEntry, b: { server: string; tool: string; argsDigest: string }) =>
  a.server !== b.server || a.tool !== b.tool || a.argsDigest !== b.argsDigest;
export { conflicts as entryConflicts };

interface MemoryRow {
  entry: LedgerEntry;
  pending: Promise<unknown> | null;
  result?: unknown;
}

/** The in-process ledger: at most `limit` keys remembered (the oldest forgotten first). */
export function createMemoryLedger(opts: { limit?: number } = {}): Ledger {
  const limit = opts.limit ?? 10_000;
  const rows = new Map<string, MemoryRow>();
  return {
    kind: 'memory',
    async once<T>(entry: LedgerEntry, effect: SideEffect<T>): Promise<LedgerOutcome<T>> {
      for (;;) {
        const row = rows.get(entry.key);
        if (!row) break;
        if (conflicts(entry, row.entry)) throw new IdempotencyConflict(entry, row.entry);
        if (!row.pending) return { result: row.result as T, replayed: true };
        // Failed or done, whatever the first one did, look again.
        await row.pending.catch(() => {});
        if (rows.get(entry.key) === row && row.pending === null) return { result: row.result as T, replayed: true };
      }
      const row: MemoryRow = { entry, pending: null };
      let replayed = false;
      const work = (async () => {
        const found = await effect.recover();
        if (found !== null) {
          replayed = true;
          return found;
        }
        return effect.act();
      })();
      row.pending = work;
      rows.set(entry.key, row);
      if (rows.size > limit) rows.delete(rows.keys().next().value as string);
      try {
        const result = await work;
        row.result = result;
        row.pending = null;
        return { result, replayed };
      } catch (err) {
        if (rows.get(entry.key) === row) rows.delete(entry.key);
        throw err;
      }
    },
    problem: async () => null,
    close: async () => {},
  };
}
