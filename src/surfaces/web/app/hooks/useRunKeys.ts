import { useEffect } from 'preact/hooks';
import type { Row } from '../model';

export interface RunKeys {
  rows: Row[];
  /** The version selected now (a ref's value: read when a key is pressed). */
  selected(): number;
  select(version: number): void;
  /** A dialog is open: its keys are its own. */
  blocked: boolean;
  onBack(): void;
  onRollback(): void;
}

/** Rows the n/p keys stop at. */
const STOPS = new Set(['checkpoint', 'marker', 'rollback', 'fail', 'attention', 'end', 'endfail']);

/** Keyboard: j/k or arrows step, g/G ends, PageUp/PageDown by ten, n/p the next checkpoint, rollback or failure, r rolls back, Esc goes back. */
export function useRunKeys({ rows, selected, select, blocked, onBack, onRollback }: RunKeys): void {
  const last = rows.at(-1)?.event.version ?? 0;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || blocked) return;
      const t = e.target;
      if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return;
      const at = selected();
      let to: number | undefined;
      if (e.key === 'j' || e.key === 'ArrowDown') to = at + 1;
      else if (e.key === 'k' || e.key === 'ArrowUp') to = at - 1;
      else if (e.key === 'g' || e.key === 'Home') to = 1;
      else if (e.key === 'G' || e.key === 'End') to = last;
      else if (e.key === 'PageDown') to = at + 10;
      else if (e.key === 'PageUp') to = at - 10;
      else if (e.key === 'n') to = rows.find((r) => r.event.version > at && STOPS.has(r.kind))?.event.version;
      else if (e.key === 'p') to = [...rows].reverse().find((r) => r.event.version < at && STOPS.has(r.kind))?.event.version;
      else if (e.key === 'Escape' || e.key === 'Backspace') {
        onBack();
        return;
      } else if (e.key === 'r') {
        e.preventDefault();
        onRollback();
        return;
      } else return;
      e.preventDefault();
      if (to !== undefined) select(to);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [last, rows, blocked]);
}
