/**
 * Reads that must agree with each other (a run with its steps and attempts, a step
 * with its attempts and calls) run in one read-only snapshot: a commit landing
 * between them cannot show an attempt that succeeded beside a step that has not.
 */
import type { Db } from '../db/connect.ts';

export function inSnapshot<T>(db: Db, read: (db: Db) => Promise<T>): Promise<T> {
  return db.transaction((tx) => read(tx as unknown as Db), { isolationLevel: 'repeatable read', accessMode: 'read only' });
}
