/**
 * The audit trail of tool calls (README: table `tool_calls`). A row is written
 * before an allowed call goes out and completed after, so a crash mid-call still
 * leaves a row (outcome NULL: unknown). Arguments are kept only as a digest.
 */
import { eq } from 'drizzle-orm';
import { type ToolCall, toolCalls } from '../../schema/tables.ts';
import type { Db } from '../db/connect.ts';

/** The same digest the capability token carries and tool servers recompute. */
export { digestArgs } from '../../tools/lib/digest.ts';

export async function insertToolCall(db: Db, row: ToolCall): Promise<number> {
  const [inserted] = await db.insert(toolCalls).values(row).returning({ id: toolCalls.id });
  return inserted.id;
}

export async function finishToolCall(
  db: Db,
  id: number,
  done: { outcome: 'ok' | 'error' | 'denied'; error?: string | null; durationMs: number; decision?: 'denied'; reason?: string },
): Promise<void> {
  await db
    .update(toolCalls)
    .set({
      outcome: done.outcome,
      error: done.error ?? null,
      durationMs: done.durationMs,
      ...(done.decision ? { decision: done.decision, reason: done.reason } : {}),
    })
    .where(eq(toolCalls.id, id));
}
