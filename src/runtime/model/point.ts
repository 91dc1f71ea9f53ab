import type { EventEnvelope } from '../../events/envelope.js';
import { RewindError, ValidationError } from '../../events/errors.js';
import { CheckpointNotFoundError } from '../errors.js';
import { isRunEvent, RunEvents } from '../events.js';
import { effectiveEvents } from '../journal.js';

// Addressing a point in a run. "At a point" always means the log as it stood
// then: the effective history of the prefix 1..v. A rollback recorded after v
// does not change the state at v, because RolledBack markers only point backwards.

/** A point in a run: a stream version, a time (the newest event recorded at or before it), or a checkpoint label. */
export type At = number | { version: number } | { time: string | number | Date } | { label: string };

/** The point asked for is not in the run. Nothing was written. */
export class TimeTravelError extends RewindError {
  readonly runId: string;
  constructor(runId: string, message: string, hint?: string) {
    super('TIME_TRAVEL', `run "${runId}": ${message}`, hint);
    this.runId = runId;
  }
}

/** A point given as a version, which needs no reading to resolve. */
export function isVersion(at: At): at is number | { version: number } {
  return typeof at === 'number' || (typeof at === 'object' && at !== null && 'version' in at);
}

/** The version, checked against a run whose last version is `end`. */
export function checkVersion(runId: string, end: number, at: number | { version: number }): number {
  const version = typeof at === 'number' ? at : at.version;
  if (!Number.isInteger(version) || version < 1 || version > end) {
    throw new TimeTravelError(runId, `has no version ${version}`, `versions run from 1 to ${end}`);
  }
  return version;
}

/** Resolves a point against the whole stream (events[i].version === i + 1). */
export function resolveAt(runId: string, events: readonly EventEnvelope[], at: At): number {
  if (isVersion(at)) return checkVersion(runId, events.length, at);
  if (typeof at === 'object' && at !== null && 'time' in at) {
    const t = at.time instanceof Date ? at.time.getTime() : typeof at.time === 'number' ? at.time : Date.parse(at.time);
    if (!Number.isFinite(t))
      throw new ValidationError(`time ${JSON.stringify(at.time)} is not a date`, [], 'use an ISO-8601 time or epoch ms');
    let version = 0;
    // recordedAt is assigned at append and only grows within a stream (a fork keeps the original's times for its copy).
    for (const e of events) if (Date.parse(e.recordedAt) <= t) version = e.version;
    if (version === 0) {
      throw new TimeTravelError(
        runId,
        `had not started at ${new Date(t).toISOString()}`,
        `its first event was recorded at ${events[0]?.recordedAt}`,
      );
    }
    return version;
  }
  if (typeof at === 'object' && at !== null && 'label' in at && typeof at.label === 'string') {
    // The newest checkpoint with the label that still counts; failing that, the newest one a rollback took out.
    const effective = effectiveEvents(events);
    const isLabel = (e: EventEnvelope) => isRunEvent(e, RunEvents.Checkpoint) && e.data.label === at.label;
    const hit = [...effective].reverse().find(isLabel) ?? [...events].reverse().find(isLabel);
    if (!hit) {
      const labels = new Set<string>();
      for (const e of events) if (isRunEvent(e, RunEvents.Checkpoint)) labels.add(e.data.label);
      throw new CheckpointNotFoundError(runId, at.label, [...labels], 'point');
    }
    return hit.version;
  }
  throw new ValidationError('a point in a run is a version, { version }, { time } or { label }');
}
