import type { EventEnvelope } from '../events/envelope.js';
import type { AppendResult } from './types.js';

/** What every backend answers an append with: the stream's new version and position, from its last event. */
export function resultOf(events: EventEnvelope[]): AppendResult {
  const last = events[events.length - 1] as EventEnvelope;
  return { streamId: last.streamId, version: last.version, position: last.position, events };
}
