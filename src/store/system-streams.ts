import type { EventFilter } from './types.js';

/**
 * Streams whose id starts with '$' hold Rewind's own records (today: the log's
 * seals). Applications cannot append to them, and whole-log reads (readAll,
 * subscribe, projections, inline projection hooks) leave them out unless the
 * filter's stream prefix itself starts with '$'. So nothing that reads "every
 * event" meets an event it did not write; `read('$rewind-seals')` and
 * `listStreams()` still show them.
 */
export const SYSTEM_PREFIX = '$';

/** Where seals (signed tree heads, see store/audit/seal.ts) are written. */
export const SEAL_STREAM = '$rewind-seals';
export const SEAL_TYPE = 'LogSealed';

export function isSystemStream(streamId: string): boolean {
  return streamId.startsWith(SYSTEM_PREFIX);
}

/** Does a whole-log read with this filter include Rewind's own streams? Only when its prefix names them. */
export function readsSystemStreams(filter: EventFilter | undefined): boolean {
  return typeof filter?.streamPrefix === 'string' && filter.streamPrefix.startsWith(SYSTEM_PREFIX);
}
