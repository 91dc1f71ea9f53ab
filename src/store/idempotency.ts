import { EventIdConflictError } from '../events/errors.js';
import type { PreparedAppend } from './types.js';

interface StoredIdentity {
  id: string;
  streamId: string;
  digest: string;
  version: number;
}

/**
 * Event ids are idempotency keys. When every event of an append is already
 * stored, in this stream, with the same content and in the same order, the
 * append is a retry of one that succeeded: return what was stored. When only
 * some are, or one differs, the caller is confused and must hear about it.
 * Returns undefined when none of the ids is stored (a new append).
 */
export function findStoredBatch<R extends StoredIdentity>(append: PreparedAppend, lookup: (id: string) => R | undefined): R[] | undefined {
  const found: R[] = [];
  for (const event of append.events) {
    if (!event.idGiven) continue;
    const stored = lookup(event.id);
    if (!stored) continue;
    if (stored.streamId !== append.streamId) {
      throw new EventIdConflictError(event.id, `it belongs to stream "${stored.streamId}", not "${append.streamId}"`);
    }
    if (stored.digest !== event.digest) {
      throw new EventIdConflictError(event.id, 'its type, data, metadata or schema version differ');
    }
    found.push(stored);
  }
  if (found.length === 0) return undefined;
  if (found.length !== append.events.length) {
    throw new EventIdConflictError(
      (found[0] as R).id,
      `${found.length} of the ${append.events.length} events in this append are already stored; retry the original append unchanged, or give new events new ids`,
    );
  }
  for (let i = 1; i < found.length; i++) {
    if ((found[i] as R).version !== (found[i - 1] as R).version + 1) {
      throw new EventIdConflictError((found[i] as R).id, 'the stored events are not in this order');
    }
  }
  return found;
}
