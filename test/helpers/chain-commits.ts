/**
 * The two statements that commit a chain step (store/continue.ts for a batch, store/continue-one.ts
 * for a run alone), driven alike: a test runs its fence and write checks against both.
 */
import type { Db } from '../../runtime/db/connect.ts';
import { commitAndClaimOne } from '../../runtime/store/continue-one.ts';
import { type ChainCommit, commitAndClaimMany } from '../../runtime/store/continue.ts';

export type CommitShape = [name: string, commit: (batch: ChainCommit[]) => Promise<Map<string, string>>];

/** `batched`: one statement for the lot; `alone`: one statement per run, in order. Each answers the runs whose fence held. */
export function commitShapes(db: () => Db): CommitShape[] {
  return [
    ['batched', (batch) => commitAndClaimMany(db(), batch)],
    ['alone', async (batch) => {
      const held = new Map<string, string>();
      for (const c of batch) {
        const at = await commitAndClaimOne(db(), c);
        if (at) held.set(c.runId, at);
      }
      return held;
    }],
  ];
}
