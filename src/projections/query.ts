import type { Json } from '../events/envelope.js';
import { ValidationError } from '../events/errors.js';
import type { Doc } from './definition.js';

export type Scalar = string | number | boolean | null;

/**
 * The queries every backend answers the same way: equality on top-level
 * fields, one sort field (documents missing it, or holding null, sort first
 * ascending), ties and the default order by key.
 */
export interface FindQuery {
  where?: Record<string, Scalar>;
  orderBy?: string | { field: string; direction?: 'asc' | 'desc' };
  limit?: number;
  offset?: number;
}

export interface FoundDoc<D extends Doc = Doc> {
  key: string;
  /** The stream whose events built the document. */
  streamId: string;
  doc: D;
}

export interface CheckedQuery {
  where: [string, Scalar][];
  order: { field: string; direction: 'asc' | 'desc' } | undefined;
  limit: number;
  offset: number;
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const MAX_FIND_LIMIT = 10_000;

export function checkQuery(query: FindQuery = {}): CheckedQuery {
  const issues: string[] = [];
  if (query === null || typeof query !== 'object') throw new ValidationError('a find query must be an object');
  const where: [string, Scalar][] = [];
  if (query.where !== undefined) {
    if (query.where === null || typeof query.where !== 'object' || Array.isArray(query.where))
      issues.push('where must be an object of field: value');
    else
      for (const [field, value] of Object.entries(query.where)) {
        if (!FIELD.test(field)) issues.push(`where field "${field}" must be an identifier (letters, digits, _)`);
        else if (!isScalar(value)) issues.push(`where.${field} must be a string, finite number, boolean or null`);
        else where.push([field, value]);
      }
  }
  let order: CheckedQuery['order'];
  if (query.orderBy !== undefined) {
    const o = typeof query.orderBy === 'string' ? { field: query.orderBy } : query.orderBy;
    if (o === null || typeof o !== 'object' || typeof o.field !== 'string' || !FIELD.test(o.field))
      issues.push('orderBy must name a top-level field');
    else if (o.direction !== undefined && o.direction !== 'asc' && o.direction !== 'desc')
      issues.push("orderBy.direction must be 'asc' or 'desc'");
    else order = { field: o.field, direction: o.direction ?? 'asc' };
  }
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_FIND_LIMIT) issues.push(`limit must be an integer from 1 to ${MAX_FIND_LIMIT}`);
  if (!Number.isInteger(offset) || offset < 0) issues.push('offset must be a non-negative integer');
  if (issues.length > 0) throw new ValidationError('invalid find query', issues);
  return { where, order, limit, offset };
}

function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** The reference semantics (the memory backend uses it; SQL backends must agree with it). */
export function runQuery(docs: Iterable<FoundDoc>, q: CheckedQuery): FoundDoc[] {
  const found = [...docs].filter((d) => q.where.every(([field, value]) => fieldEquals(d.doc[field], value)));
  found.sort((a, b) => {
    if (q.order) {
      const c = compareJson(a.doc[q.order.field], b.doc[q.order.field]);
      if (c !== 0) return q.order.direction === 'asc' ? c : -c;
    }
    return compareText(a.key, b.key);
  });
  return found.slice(q.offset, q.offset + q.limit);
}

function fieldEquals(actual: Json | undefined, expected: Scalar): boolean {
  if (expected === null) return actual === null;
  return actual === expected;
}

/** Missing and null first, then booleans (false < true), numbers, strings (by code point); objects and arrays last, tied. */
function compareJson(a: Json | undefined, b: Json | undefined): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  // Objects and arrays tie (then the key decides): no backend can compare them the same way cheaply.
  if (ra === 0 || ra === 4) return 0;
  if (ra === 3) return compareText(a as string, b as string);
  return (a as number | boolean) < (b as number | boolean) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/**
 * Text in Unicode code point order: the order of UTF-8 bytes, which is how
 * SQLite (BINARY) and PostgreSQL (COLLATE "C") compare it. JavaScript's `<`
 * compares UTF-16 code units instead, which puts a character outside the
 * Basic Multilingual Plane (an emoji: a surrogate pair, 0xD800-0xDFFF) before
 * U+E000-U+FFFF (full-width forms, say); the first differing units are
 * shifted so that surrogates sort above them.
 */
export function compareText(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? codePointOrder(x) - codePointOrder(y) : x - y;
  }
  return a.length - b.length;
}

const codePointOrder = (unit: number) => (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000);

function rank(v: Json | undefined): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'boolean') return 1;
  if (typeof v === 'number') return 2;
  if (typeof v === 'string') return 3;
  return 4;
}
