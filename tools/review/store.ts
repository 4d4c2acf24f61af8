/**
 * Review comments, stored once per idempotency key. With a file, each new comment is
 * appended as one JSON line and fsynced before the tool answers, so a restarted
 * server still knows every key it has seen (and never posts twice).
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
  post(c: Omit<Comment, 'id' | 'postedAt' | 'deliveries'>): { comment: Comment; created: boolean };
  list(filter: { repo?: string; pr?: number }): Comment[];
}

export function createCommentStore(file?: string): CommentStore {
  const comments: Comment[] = [];
  const byKey = new Map<string, Comment>();
  let fd: number | undefined;
  if (file) {
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const c = JSON.parse(line) as Comment;
        comments.push(c);
        if (c.idempotencyKey) byKey.set(c.idempotencyKey, c);
      }
    }
    fd = fs.openSync(file, 'a');
  }
  return {
    post(input) {
      const seen = input.idempotencyKey ? byKey.get(input.idempotencyKey) : undefined;
      if (seen) {
        seen.deliveries++;
        return { comment: seen, created: false };
      }
      const comment: Comment = { ...input, id: comments.length + 1, postedAt: new Date().toISOString(), deliveries: 1 };
      if (fd !== undefined) {
        fs.writeSync(fd, `${JSON.stringify(comment)}\n`);
        fs.fsyncSync(fd);
      }
      comments.push(comment);
      if (comment.idempotencyKey) byKey.set(comment.idempotencyKey, comment);
      return { comment, created: true };
    },
    list(filter) {
      return comments.filter((c) => (filter.repo === undefined || c.repo === filter.repo) && (filter.pr === undefined || c.pr === filter.pr));
    },
  };
}
