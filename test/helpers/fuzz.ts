/**
 * Inputs for fuzzing the API: a seeded generator (mulberry32) and the odd strings,
 * values and bodies that clients send by mistake or on purpose.
 */
/** mulberry32: small, fast, and good enough to pick test cases. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick<T>(xs: readonly T[]): T {
      return xs[Math.floor(next() * xs.length)];
    },
    chance: (p: number) => next() < p,
  };
}
export type Rng = ReturnType<typeof prng>;

const UNICODE = ['é', 'ß', '漢字', '🙂', '👩🏽‍💻', '\u202e', '\u200b', '\ufeff', '\ud800', '\udfff', '\u0000', '\u0007', '\\', '"', "'", '%', '../', '\n'];

export function junkString(r: Rng): string {
  switch (r.int(8)) {
    case 0: return '';
    case 1: return 'x'.repeat(r.pick([1, 100, 10_000, 100_000, 600_000]));
    case 2: return Array.from({ length: 1 + r.int(20) }, () => r.pick(UNICODE)).join('');
    case 3: return "'; drop table runs; --";
    case 4: return '<script>alert(1)</script>';
    case 5: return '${process.env}{{7*7}}';
    case 6: return String(r.next());
    default: return Array.from({ length: 1 + r.int(30) }, () => String.fromCharCode(r.int(0x3000))).join('');
  }
}

export function junkValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 7 : 10)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick([0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31, -0]);
    case 3: return junkString(r);
    case 4: return r.int(1000);
    case 5: return 'bug';
    case 6: return [];
    case 7: return Array.from({ length: r.int(5) }, () => junkValue(r, depth + 1));
    case 8: return Object.fromEntries(Array.from({ length: r.int(5) }, () => [r.chance(0.3) ? junkString(r).slice(0, 50) : r.pick(['repo', 'pr', 'n', 'labels', 'meta', 'fromSeq', '__proto__', 'constructor']), junkValue(r, depth + 1)]));
    default: return { repo: 'acme/shop', pr: 1 + r.int(100) };
  }
}

/** `depth` levels of `open`, the leaf, and as many `close`. */
export function wrap(depth: number, open: string, close: string, leaf: string): string {
  return open.repeat(depth) + leaf + close.repeat(depth);
}

export const nested = (depth: number, leaf: string) => wrap(depth, '{"a":', '}', leaf);

/** A request body: valid-looking, wrong, broken, huge or deep. */
export function body(r: Rng): string | undefined {
  switch (r.int(16)) {
    case 0: return undefined;
    case 1: return '';
    case 2: return '{"n":';
    case 3: return "{'n': 1}";
    case 4: return '{"n": NaN}';
    case 5: return '{"n": 1} trailing';
    case 6: return nested(r.pick([10, 1000, 100_000]), '1');
    case 7: return wrap(r.pick([10, 1000, 200_000]), '[', ']', '"x"');
    case 8: return JSON.stringify({ n: 1, pad: 'x'.repeat(r.pick([1024 * 1024, 2 * 1024 * 1024])) });
    case 9: return JSON.stringify({ repo: 'acme/shop', pr: 1, meta: { note: `nul \u0000 inside`, [`k\u0000`]: 1 } });
    case 10: return `{"repo":"acme/shop","pr":1,"meta":${nested(r.pick([50, 500, 5000, 50_000]), '1')}}`;
    case 11: return JSON.stringify({ fromSeq: junkValue(r) });
    case 12: return JSON.stringify(junkString(r));
    case 13: return String(r.pick([1, -1, 'true', 'null', '1e400', '"\\ud800"', '"\\u0000"', '[]']));
    case 14: return JSON.stringify({ repo: 'acme/shop', pr: 1, labels: [r.pick(['bug', 'feature', 'nope', 1, null])] });
    default: return JSON.stringify(junkValue(r));
  }
}

/** Percent-encodes; a lone surrogate becomes the (invalid UTF-8) bytes of one, which servers must survive too. */
export function pct(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return `${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ''))}%ED%A0%80`;
  }
}

export const latin1 = (s: string) => s.replace(/[^\x20-\x7e\xa0-\xff]/g, '?');
