import { useEffect, useRef } from 'preact/hooks';
import { clockTime, duration, type Row } from '../model';

interface Props {
  rows: Row[];
  selected: number;
  onSelect(version: number): void;
}

const KIND_ICON: Record<string, string> = {
  start: '▶',
  step: '·',
  ok: '✓',
  fail: '✕',
  value: '≡',
  checkpoint: '⚑',
  rollback: '↶',
  marker: '↶',
  comp: '⟲',
  attention: '!',
  end: '■',
  endfail: '■',
  domain: '◆',
};

/** A compact strip of the whole run: one cell per event, checkpoints flagged, undone events hatched. */
export function Overview({ rows, selected, onSelect }: Props) {
  return (
    <div class="overview" role="presentation">
      {rows.map((r) => {
        const d = (r.event.data ?? {}) as Record<string, unknown>;
        return (
          <button
            type="button"
            tabIndex={-1}
            key={r.event.version}
            class={`ov k-${r.kind} s-${r.status}${r.event.version === selected ? ' sel' : ''}`}
            title={`v${r.event.version} ${r.event.type} ${r.summary}`}
            onClick={() => onSelect(r.event.version)}
          >
            {r.kind === 'checkpoint' ? <span class="ov-flag">{String(d.label ?? '')}</span> : null}
          </button>
        );
      })}
    </div>
  );
}

/** The run's events, one row each: steps with durations, checkpoints as flags, rollbacks with the span they undid. */
export function Timeline({ rows, selected, onSelect }: Props) {
  const list = useRef<HTMLOListElement>(null);
  const maxMs = Math.max(1, ...rows.map((r) => r.durationMs ?? 0));

  useEffect(() => {
    const el = list.current?.querySelector<HTMLElement>(`[data-version="${selected}"]`);
    el?.scrollIntoView({ block: 'nearest' });
  }, [selected, rows.length]);

  return (
    <ol class="timeline" ref={list} aria-label="timeline" data-testid="timeline">
      {rows.map((r, i) => {
        const e = r.event;
        const d = (e.data ?? {}) as Record<string, unknown>;
        const prevUndone = rows[i - 1]?.undoneBy === r.undoneBy && r.undoneBy !== undefined;
        const nextUndone = rows[i + 1]?.undoneBy === r.undoneBy && r.undoneBy !== undefined;
        const cls = [
          'row',
          `k-${r.kind}`,
          r.status === 'rolled_back' ? 'undone' : '',
          r.status === 'marker' ? 'marker' : '',
          e.version === selected ? 'sel' : '',
          r.status === 'rolled_back' && !prevUndone ? 'span-start' : '',
          r.status === 'rolled_back' && !nextUndone ? 'span-end' : '',
        ]
          .filter(Boolean)
          .join(' ');
        return (
          // biome-ignore lint/a11y/useKeyWithClickEvents: the timeline is stepped with j/k and the arrows (window listener in RunView)
          <li
            key={e.version}
            class={cls}
            data-version={e.version}
            data-type={e.type}
            data-status={r.status}
            aria-current={e.version === selected ? 'true' : undefined}
            onClick={() => onSelect(e.version)}
          >
            <span class="v">{e.version}</span>
            <span class="rail">
              <span class="dot">{KIND_ICON[r.kind] ?? '·'}</span>
            </span>
            <span class="type">{e.type}</span>
            <span class="sum">
              {r.kind === 'checkpoint' ? <span class="flag">⚑ {String(d.label ?? '')}</span> : null}
              {r.kind === 'marker' ? (
                <span class="rb">
                  ↶ rolled back to “{String(d.label ?? '')}” (v{String(d.targetVersion ?? '')}) — {String(d.reason ?? '')}
                </span>
              ) : r.kind === 'checkpoint' ? null : (
                <span class="text" title={r.summary}>
                  {r.summary}
                </span>
              )}
              {r.status === 'rolled_back' ? (
                <span class="badge undone-badge" title="still in the log, no longer in the effective history">
                  ↶ undone by v{r.undoneBy}
                </span>
              ) : null}
            </span>
            <span class="dur">
              {r.durationMs !== undefined ? (
                <>
                  <span class="bar" style={{ width: `${Math.max(2, Math.round((r.durationMs / maxMs) * 60))}px` }} />
                  {duration(r.durationMs)}
                </>
              ) : null}
            </span>
            <span class="time">{clockTime(e.recordedAt)}</span>
          </li>
        );
      })}
    </ol>
  );
}
