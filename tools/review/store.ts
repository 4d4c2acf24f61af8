/**
 * Review comments, stored once per idempotency key. Two stores: this one (memory, or
 * a file: each new comment and each deletion is appended as one JSON line and fsynced
 * before the tool answers, so a restarted server still knows every key it has seen),
 * for one replica on one machine; and the ledger database's (store-pg.ts), which
 * every replica shares.
 */
import fs from 'node:fs';

export interface Comment {
  id: number;
  idempotencyKey: string | null;
  repo: string;
  pr: number;
  body: string;
  path: string | null;
  line: number | null;
  postedAt: string;
  /** How many times this key's post arrived (retries, replays); the side effect happened once. */
  deliveries: number;
}

export interface CommentStore {
  /** Posts once per key; a repeat returns the stored comment with `created: false`. */
  post(c: Omit<Comment, 'id' | 'postedAt' | 'deliveries'>): Promise<{ comment: Comment; created: boolean }>;
  /** The comment stored under a key (counting one more delivery of it when `delivered`); null when none is. */
  byKey(key: string, delivered: boolean): Promise<Comment | null>;
  list(filter: { repo?: string; pr?: number }): Promise<Comment[]>;
  /** Deletes the comments of one pull request (or of a whole repository); returns how many. */
  deleteAll(filter: { repo: string; pr?: number }): Promise<number>;
}

interface Deletion {
  op: 'delete_all';
  repo: string;
  pr?: number;
}

const matches = (filter: { repo?: string; pr?: number }) => (c: Comment) =>
  (filter.repo === undefined || c.repo === filter.repo) && (filter.pr === undefined || c.pr === filter.pr);

export function createCommentStore(file?: string): CommentStore {
  let comments: Comment[] = [];
  const byKey = new Map<string, Comment>();
  let nextId = 1;
  let fd: number | undefined;
  const remove = (filter: Deletion) => {
    const gone = comments.filter(matches(filter));
    comments = comments.filter((c) => !gone.includes(c));
    for (const c of gone) if (c.idempotencyKey) byKey.delete(c.idempotencyKey);
    return gone.length;
  };
  const write = (record: Comment | Deletion) => {
    if (fd === undefined) return;
    fs.writeSync(fd, `${JSON.stringify(record)}\n`);
    fs.fsyncSync(fd);
  };
  if (file) {
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const record = JSON.parse(line) as Comment | Deletion;
        if ('op' in record) {
          remove(record);
          continue;
        }
        comments.push(record);
        nextId = Math.max(nextId, record.id + 1);
        if (record.idempotencyKey) byKey.set(record.idempotencyKey, record);
      }
    }
    fd = fs.openSync(file, 'a');
  }
  return {
    async post(input) {
      const seen = input.idempotencyKey ? byKey.get(input.idempotencyKey) : undefined;
      if (seen) {
        seen.deliveries++;
        return { comment: seen, created: false };
      }
      const comment: Comment = { ...input, id: nextId++, postedAt: new Date().toISOString(), deliveries: 1 };
      write(comment);
      comments.push(comment);
      if (comment.idempotencyKey) byKey.set(comment.idempotencyKey, comment);
      return { comment, created: true };
    },
    async byKey(key, delivered) {
      const seen = byKey.get(key);
      if (!seen) return null;
      if (delivered) seen.deliveries++;
      return seen;
    },
    async list(filter) {
      return comments.filter(matches(filter));
    },
    async deleteAll(filter) {
      const deletion: Deletion = { op: 'delete_all', repo: filter.repo, ...(filter.pr === undefined ? {} : { pr: filter.pr }) };
      write(deletion);
      return remove(deletion);
    },
  };
}
