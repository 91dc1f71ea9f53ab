import type { ComponentChildren } from 'preact';
import { formatPath, isJsonObject as isObject, type StatePath as Path, sameJson } from '../model';

type Mark = 'added' | 'removed' | 'changed';

interface Props {
  value: unknown;
  /** Inline diff: what changed from `prev` to `value` is highlighted, removed entries shown struck through. */
  prev?: unknown;
  /** Side-by-side diff: paths (formatPath) to highlight on this side, with their mark. */
  marks?: Map<string, Mark>;
  /** Names the tree for tests and screen readers. */
  label?: string;
}

/** A JSON value as an indented tree, one line per entry, with the changes from `prev` marked. */
export function JsonView({ value, prev, marks, label }: Props) {
  const lines: ComponentChildren[] = [];
  const inline = prev !== undefined;
  let n = 0;
  const line = (depth: number, content: ComponentChildren, mark?: Mark, path?: Path) =>
    lines.push(
      <div
        key={n++}
        class={`jl${mark ? ` j-${mark}` : ''}`}
        style={{ paddingLeft: `${depth * 1.1 + 0.6}em` }}
        data-path={path ? formatPath(path) : undefined}
        data-mark={mark}
      >
        {mark === 'added' ? (
          <span class="jsign">+</span>
        ) : mark === 'removed' ? (
          <span class="jsign">−</span>
        ) : mark === 'changed' ? (
          <span class="jsign">~</span>
        ) : null}
        {content}
      </div>,
    );

  const keyOf = (k: string | number | undefined) =>
    k === undefined ? null : typeof k === 'number' ? (
      <span class="jidx">{k}: </span>
    ) : (
      <>
        <span class="jkey">{JSON.stringify(k)}</span>:{' '}
      </>
    );

  /**
   * `before` is the same place in `prev` (inline mode; NONE when absent there).
   * `forced` marks a whole subtree: added, removed, or highlighted on one side of a side-by-side diff.
   */
  const walk = (
    v: unknown,
    before: unknown,
    k: string | number | undefined,
    depth: number,
    path: Path,
    comma: boolean,
    forced?: Mark,
  ): void => {
    const c = comma ? ',' : '';
    let mark = forced ?? marks?.get(formatPath(path));
    let childrenBefore: unknown = NONE;
    if (inline && !forced) {
      if (before === NONE) mark = 'added';
      else if (!sameJson(v, before)) {
        const sameShape = (isObject(v) && isObject(before)) || (Array.isArray(v) && Array.isArray(before));
        if (sameShape) childrenBefore = before;
        else if (isContainer(v) || isContainer(before)) {
          // A value that changed shape: the old one struck through, then the new one.
          walk(before, NONE, k, depth, path, true, 'removed');
          mark = 'added';
        } else mark = 'changed';
      } else childrenBefore = before;
    }
    const sub = mark === 'added' || mark === 'removed' || (marks && mark) ? mark : undefined;
    if (Array.isArray(v) || isObject(v)) {
      const entries: Array<[string | number, unknown]> = Array.isArray(v)
        ? v.map((x, i) => [i, x])
        : Object.entries(v).filter(([, x]) => x !== undefined);
      const removed: Array<[string | number, unknown]> = [];
      if (Array.isArray(v) && Array.isArray(childrenBefore))
        for (let i = v.length; i < childrenBefore.length; i++) removed.push([i, childrenBefore[i]]);
      if (isObject(v) && isObject(childrenBefore)) {
        for (const [pk, pv] of Object.entries(childrenBefore)) if (pv !== undefined && v[pk] === undefined) removed.push([pk, pv]);
      }
      const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
      if (entries.length === 0 && removed.length === 0) {
        line(
          depth,
          <>
            {keyOf(k)}
            <span class="jpunct">
              {open}
              {close}
            </span>
            {c}
          </>,
          mark,
          path,
        );
        return;
      }
      line(
        depth,
        <>
          {keyOf(k)}
          <span class="jpunct">{open}</span>
        </>,
        mark,
        path,
      );
      entries.forEach(([ck, cv], i) => {
        const b =
          childrenBefore === NONE
            ? NONE
            : Array.isArray(childrenBefore)
              ? (ck as number) < childrenBefore.length
                ? childrenBefore[ck as number]
                : NONE
              : isObject(childrenBefore) && childrenBefore[ck as string] !== undefined
                ? childrenBefore[ck as string]
                : NONE;
        walk(cv, inline && !sub ? b : NONE, ck, depth + 1, [...path, ck], i < entries.length - 1 || removed.length > 0, sub);
      });
      removed.forEach(([rk, rv], i) => {
        walk(rv, NONE, rk, depth + 1, [...path, rk], i < removed.length - 1, 'removed');
      });
      line(
        depth,
        <>
          <span class="jpunct">{close}</span>
          {c}
        </>,
        sub,
      );
      return;
    }
    if (mark === 'changed' && inline && before !== NONE) {
      line(
        depth,
        <>
          {keyOf(k)}
          <del class="jold">{scalar(before)}</del> <span class="jarrow">→</span> {scalar(v)}
          {c}
        </>,
        'changed',
        path,
      );
      return;
    }
    line(
      depth,
      <>
        {keyOf(k)}
        {scalar(v)}
        {c}
      </>,
      mark,
      path,
    );
  };
  walk(value, inline ? prev : NONE, undefined, 0, [], false);
  return (
    <div class="json" role="tree" aria-label={label} data-testid={label}>
      {lines}
    </div>
  );
}

const NONE = Symbol('none');

function isContainer(v: unknown): boolean {
  return Array.isArray(v) || isObject(v);
}

function scalar(v: unknown) {
  if (typeof v === 'string') return <span class="jstr">{JSON.stringify(v)}</span>;
  if (typeof v === 'number') return <span class="jnum">{String(v)}</span>;
  if (typeof v === 'boolean') return <span class="jbool">{String(v)}</span>;
  if (v === null || v === undefined) return <span class="jnull">null</span>;
  if (Array.isArray(v)) return <span class="jpunct">[…]</span>;
  return <span class="jpunct">{'{…}'}</span>;
}
