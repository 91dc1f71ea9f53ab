import type { EventEnvelope } from '../events/envelope.js';
import type { Changeset, DocView } from './apply.js';
import { ProjectionHandlerError } from './errors.js';
import type { Applier, ProjectionRecord } from './storage/types.js';

/**
 * What an inline projection does inside one append, the same on every backend.
 *
 * `written` are the events this append brings; `missed` the events before
 * them the projection has not applied (appended by a process that does not
 * have the projection, or before it was opened), every position from the
 * record's up to the first written one.
 *
 * The rule: an inline projection refuses only the appends it is handed. A
 * handler that throws on a written event throws here, and the append fails
 * with nothing written. A handler that throws on a missed event cannot blame
 * this append, which did not bring it: the projection stops at that event,
 * as an asynchronous one does (what came before it applied, the error in its
 * registry row and so in `status()`), and the append goes on without it.
 * Until `resume` no append applies it; consumers (`catchUp`, `start`) take it
 * from there after the resume, as they do for an asynchronous projection.
 *
 * Returns the documents to write and the registry row to put, or undefined
 * when there is nothing to apply.
 */
export function applyInline(
  record: ProjectionRecord,
  applier: Applier,
  missed: EventEnvelope[],
  written: EventEnvelope[],
  view: DocView,
  now: string,
): { changes: Changeset; record: ProjectionRecord } | undefined {
  const events = [...missed, ...written].sort((a, b) => a.position - b.position);
  const last = events.at(-1);
  if (!last) return undefined;
  try {
    return {
      changes: applier.apply(events, view),
      record: { ...record, position: last.position, lastEventAt: last.recordedAt, updatedAt: now },
    };
  } catch (error) {
    if (!(error instanceof ProjectionHandlerError) || !missed.some((e) => e.position === error.position)) throw error;
    // What came before it: the handlers are pure and got past these events in the attempt that failed.
    const before = events.filter((e) => e.position < error.position);
    return {
      changes: applier.apply(before, view),
      record: {
        ...record,
        position: error.position - 1,
        lastEventAt: before.at(-1)?.recordedAt ?? record.lastEventAt,
        error: error.message,
        errorPosition: error.position,
        updatedAt: now,
      },
    };
  }
}
