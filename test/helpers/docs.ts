/** Reads the SQL that the documentation shows, so tests run exactly what operators will paste. */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The first ```sql block after the heading that contains `heading` in `file` (relative to the repository root). */
export function documentedSql(file: string, heading: string): string {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const at = text.split('\n').findIndex((line) => /^#{1,6} /.test(line) && line.includes(heading));
  if (at < 0) throw new Error(`${file} has no heading containing "${heading}"`);
  const rest = text.split('\n').slice(at + 1).join('\n');
  const m = /```sql\n([\s\S]*?)```/.exec(rest);
  if (!m) throw new Error(`${file}: no sql block after "${heading}"`);
  return m[1];
}
