/**
 * Redis isolation: every test gets its own key prefix, and its keys are deleted after.
 * REDIS_URL (default redis://127.0.0.1:6379) names the server.
 */
import crypto from 'node:crypto';
import { createClient } from 'redis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function testPrefix(): string {
  return `baton-test:${crypto.randomBytes(5).toString('hex')}:`;
}

/** Deletes every key under the prefix. */
export async function dropPrefix(prefix: string): Promise<void> {
  const client = await createClient({ url: REDIS_URL }).connect();
  try {
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
    if (keys.length) await client.del(keys);
  } finally {
    await client.close();
  }
}
