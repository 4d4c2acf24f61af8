/**
 * Review comments in the ledger database (table `review_comments`, beside
 * `tool_ledger`), so every replica of the review server sees the same comments and
 * the same keys. A key is unique: the insert itself is idempotent, under the ledger's
 * reservation as a second line of defence.
 */
import type { PgLedger } from '../lib/ledger-pg.ts';
import type { Comment, CommentStore } from './store.ts';

export const REVIEW_DDL = [
  `create table if not exists {schema}."review_comments" (
    id bigserial primary key,
    idempotency_key text unique,
    repo text not null,
    pr integer not null,
    body text not null,
    path text,
    line integer,
    posted_at timestamptz not null default now(),
    deliveries integer not null default 1
  )`,
  `create index if not exists review_comments_repo_pr on {schema}."review_comments" (repo, pr)`,
];

interface Row {
  id: string;
  idempotency_key: string | null;
  repo: string;
  pr: number;
  body: string;
  path: string | null;
  line: number | null;
  posted_at: Date;
  deliveries: number;
  created?: boolean;
}

const toComment = (r: Row): Comment => ({
  id: Number(r.id),
  idempotencyKey: r.idempotency_key,
  repo: r.repo,
  pr: r.pr,
  body: r.body,
  path: r.path,
  line: r.line,
  postedAt: r.posted_at.toISOString(),
  deliveries: r.deliveries,
});

export function createPgCommentStore(ledger: PgLedger): CommentStore {
  const T = ledger.table('review_comments');
  const q = async (text: string, values: unknown[]) => {
    await ledger.prepare();
    return (await ledger.pool.query<Row>(text, values)).rows;
  };
  return {
    async post(c) {
      // `xmax = 0` is true for a row this statement inserted, false for one it updated.
      const [row] = await q(
        `insert into ${T} (idempotency_key, repo, pr, body, path, line) values ($1, $2, $3, $4, $5, $6)
         on conflict (idempotency_key) do update set deliveries = ${T}.deliveries + 1
         returning *, (xmax = 0) as created`,
        [c.idempotencyKey, c.repo, c.pr, c.body, c.path, c.line],
      );
      return { comment: toComment(row), created: row.created === true };
    },
    async byKey(key, delivered) {
      const [row] = delivered
        ? await q(`update ${T} set deliveries = deliveries + 1 where idempotency_key = $1 returning *`, [key])
        : await q(`select * from ${T} where idempotency_key = $1`, [key]);
      return row ? toComment(row) : null;
    },
    async list(filter) {
      const rows = await q(`select * from ${T} where ($1::text is null or repo = $1) and ($2::int is null or pr = $2) order by id`, [
        filter.repo ?? null,
        filter.pr ?? null,
      ]);
      return rows.map(toComment);
    },
    async deleteAll(filter) {
      const rows = await q(`delete from ${T} where repo = $1 and ($2::int is null or pr = $2) returning id`, [filter.repo, filter.pr ?? null]);
      return rows.length;
    },
  };
}
