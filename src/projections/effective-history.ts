import type { EventEnvelope } from '../events/envelope.js';

/** The type of the marker a completed rollback appends to its stream. */
export const ROLLED_BACK = 'RolledBack';

/** A `RolledBack` marker: it names the stream version its stream went back to. */
export function rollbackTarget(event: Pick<EventEnvelope, 'type' | 'data'>): number | undefined {
  if (event.type !== ROLLED_BACK) return undefined;
  const target = (event.data as { targetVersion?: unknown } | null)?.targetVersion;
  return typeof target === 'number' && Number.isInteger(target) && target >= 0 ? target : undefined;
}

export interface EffectiveHistoryOptions {
  /**
   * Keep the markers themselves (in their place), so a read model can show
   * that a rollback happened. A marker is never undone by a later, deeper
   * rollback: the rollback did happen. Default false: the runtime's reducer
   * only wants the events that still count.
   */
  keepMarkers?: boolean;
}

/**
 * The events of ONE stream that still count: for every RolledBack marker, the
 * events after its target version up to the marker are dropped. Markers point
 * backwards only, so one forward pass handles nested rollbacks: a later
 * rollback to an older target drops further. Pure; the runtime's reducer and
 * the projections share it, so a read model never disagrees with a replay.
 */
export function effectiveHistory<E extends Pick<EventEnvelope, 'type' | 'data' | 'version'>>(
  events: readonly E[],
  options: EffectiveHistoryOptions = {},
): E[] {
  let kept: E[] = [];
  for (const event of events) {
    const target = rollbackTarget(event);
    if (target === undefined) {
      kept.push(event);
      continue;
    }
    if (options.keepMarkers) {
      kept = kept.filter((e) => e.version <= target || rollbackTarget(e) !== undefined);
      kept.push(event);
    } else {
      while (kept.length > 0 && (kept[kept.length - 1] as E).version > target) kept.pop();
    }
  }
  return kept;
}
