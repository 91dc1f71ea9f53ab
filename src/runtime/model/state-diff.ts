import { canonicalJson } from '../../events/canonical.js';

/** Where a value sits inside a state: object keys and array indexes, outermost first. */
export type StatePath = Array<string | number>;

export interface StateDiff {
  equal: boolean;
  added: Array<{ path: StatePath; at: string; value: unknown }>;
  removed: Array<{ path: StatePath; at: string; value: unknown }>;
  changed: Array<{ path: StatePath; at: string; from: unknown; to: unknown }>;
}

/** `a.b[2].c`; the root is `(root)`. */
export function formatPath(path: StatePath): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `${i ? '.' : ''}${p}` : `[${JSON.stringify(p)}]`))
    .join('');
}

/** A JSON object (not an array, not null). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Equal as JSON: key order does not matter. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/**
 * A structural diff of two reducer states (JSON values). Objects are compared
 * key by key and arrays index by index: an element inserted in the middle of
 * an array shows as changes up to the end plus one addition, which is what
 * "the state at index i is now X" means for a log-derived state.
 */
export function diffState(from: unknown, to: unknown): StateDiff {
  const out: StateDiff = { equal: true, added: [], removed: [], changed: [] };
  const walk = (a: unknown, b: unknown, path: StatePath): void => {
    if (sameJson(a, b)) return;
    if (isJsonObject(a) && isJsonObject(b)) {
      for (const key of Object.keys(a).sort()) {
        // Own keys only: `in` would find Object.prototype's toString in a state that has no such key.
        if (!Object.hasOwn(b, key) || b[key] === undefined) {
          if (a[key] !== undefined) out.removed.push({ path: [...path, key], at: formatPath([...path, key]), value: a[key] });
        } else walk(a[key], b[key], [...path, key]);
      }
      for (const key of Object.keys(b).sort()) {
        if ((!Object.hasOwn(a, key) || a[key] === undefined) && b[key] !== undefined)
          out.added.push({ path: [...path, key], at: formatPath([...path, key]), value: b[key] });
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      const shared = Math.min(a.length, b.length);
      for (let i = 0; i < shared; i++) walk(a[i], b[i], [...path, i]);
      for (let i = shared; i < a.length; i++) out.removed.push({ path: [...path, i], at: formatPath([...path, i]), value: a[i] });
      for (let i = shared; i < b.length; i++) out.added.push({ path: [...path, i], at: formatPath([...path, i]), value: b[i] });
      return;
    }
    out.changed.push({ path, at: formatPath(path), from: a, to: b });
  };
  walk(from, to, []);
  out.equal = out.added.length + out.removed.length + out.changed.length === 0;
  return out;
}

/** One change of a StateDiff. */
export type StateChange =
  | { op: 'added' | 'removed'; path: StatePath; at: string; value: unknown }
  | { op: 'changed'; path: StatePath; at: string; from: unknown; to: unknown };

/** The changes of a diff in one list, in the order of their paths (keys by name, indexes by number), as a reader scans a state. */
export function changeList(diff: StateDiff): StateChange[] {
  const all: StateChange[] = [
    ...diff.removed.map((c) => ({ op: 'removed' as const, ...c })),
    ...diff.added.map((c) => ({ op: 'added' as const, ...c })),
    ...diff.changed.map((c) => ({ op: 'changed' as const, ...c })),
  ];
  return all.sort((a, b) => comparePaths(a.path, b.path));
}

function comparePaths(a: StatePath, b: StatePath): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return a.length - b.length;
}
