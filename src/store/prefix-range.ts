/**
 * The ids (of streams, of runs) starting with `prefix` are exactly those in [prefix, successor):
 * SQLite, and PostgreSQL under COLLATE "C", compare text as UTF-8 bytes, which orders like code
 * points, so the successor bumps the last code point. A range lets the database seek in an index
 * and, unlike LIKE, is case-sensitive and has no wildcards to escape.
 */
export function prefixRange(prefix: string | undefined): [string | null, string | null] {
  if (prefix === undefined) return [null, null];
  const points = [...prefix].map((c) => c.codePointAt(0) as number);
  while (points.length > 0) {
    const last = (points.pop() as number) + 1;
    if (last <= 0x10ffff) {
      // Surrogates are not characters: the next one after U+D7FF is U+E000.
      points.push(last === 0xd800 ? 0xe000 : last);
      return [prefix, String.fromCodePoint(...points)];
    }
  }
  return [prefix, null];
}
