import { type CanonicalCopy, canonicalJsonAndCopy } from '../events/canonical.js';
import type { EventMetadata, NewEvent } from '../events/envelope.js';
import { type ExpectedVersion, ValidationError } from '../events/errors.js';
import { contentDigestOfJson } from '../events/hash.js';
import { uuidv7 } from '../events/ids.js';
import type { EventRegistry } from '../events/registry.js';
import { checkFenceArg } from './leases.js';
import { isSystemStream, SYSTEM_PREFIX } from './system-streams.js';
import type { PreparedAppend, PreparedEvent, StreamAppend } from './types.js';

const MAX_ID_LENGTH = 200;
/** The default largest event (data and metadata as stored); an agent's log is not a blob store. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
// C0 and C1 control characters: invisible in every listing, a source of confusion and forged-looking ids.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

export interface PrepareOptions {
  registry: EventRegistry;
  now: () => string;
  maxEventBytes?: number;
  /** The store's own records: '$…' streams allowed, the default size limit. */
  system?: boolean;
}

/**
 * Checks a whole batch and turns it into prepared appends, or throws a
 * ValidationError listing every problem found. Runs before any I/O, so bad
 * input never reaches the database.
 */
export function prepareAppends(
  appends: StreamAppend[],
  { registry, now, maxEventBytes: limit, system = false }: PrepareOptions,
): PreparedAppend[] {
  const issues: string[] = [];
  const maxEventBytes = system ? DEFAULT_MAX_EVENT_BYTES : (limit ?? DEFAULT_MAX_EVENT_BYTES);
  if (!Array.isArray(appends) || appends.length === 0) {
    throw new ValidationError('appendMany needs a non-empty array of { streamId, events, expectedVersion }');
  }
  const seenStreams = new Set<string>();
  const seenIds = new Set<string>();
  const recordedAt = now();
  const prepared: PreparedAppend[] = [];

  appends.forEach((append, a) => {
    const where = appends.length > 1 ? `appends[${a}]` : '';
    if (append === null || typeof append !== 'object') {
      issues.push(`${where || 'append'} must be an object`);
      return;
    }
    const { streamId, events } = append;
    const expectedVersion = append.expectedVersion ?? 'any';
    if (!isId(streamId)) {
      issues.push(
        `${prefix(where, 'streamId')} must be a non-empty string of at most ${MAX_ID_LENGTH} characters without control characters`,
      );
    } else if (isSystemStream(streamId) && !system) {
      issues.push(
        `${prefix(where, 'streamId')} "${streamId}" starts with '${SYSTEM_PREFIX}', which is kept for Rewind's own records (seals); name the stream otherwise`,
      );
    } else if (seenStreams.has(streamId)) {
      issues.push(`stream "${streamId}" appears twice in one appendMany; merge its events into one entry`);
    } else {
      seenStreams.add(streamId);
    }
    if (!isExpectedVersion(expectedVersion)) {
      issues.push(
        `${prefix(where, 'expectedVersion')} must be a non-negative integer, 'any', 'no_stream' or 'exists', got ${JSON.stringify(expectedVersion)}`,
      );
    }
    checkFenceArg(where ? `${where}.` : '', append.fence, issues);
    if (!Array.isArray(events) || events.length === 0) {
      issues.push(`${prefix(where, 'events')} must be a non-empty array`);
      return;
    }
    const out: PreparedEvent[] = [];
    events.forEach((event, i) => {
      const at = prefix(where, `events[${i}]`);
      const before = issues.length;
      if (event === null || typeof event !== 'object') {
        issues.push(`${at} must be an object with a type and data`);
        return;
      }
      if (!isId(event.type)) {
        issues.push(`${at}.type must be a non-empty string of at most ${MAX_ID_LENGTH} characters without control characters`);
      }
      if (event.id !== undefined && !isId(event.id)) {
        issues.push(`${at}.id must be a non-empty string of at most ${MAX_ID_LENGTH} characters without control characters`);
      }
      if (event.id !== undefined && seenIds.has(event.id)) issues.push(`${at}.id ${event.id} appears twice in this append`);
      if (event.schemaVersion !== undefined && !(Number.isInteger(event.schemaVersion) && event.schemaVersion >= 1)) {
        issues.push(`${at}.schemaVersion must be a positive integer`);
      }
      if (
        event.metadata !== undefined &&
        (event.metadata === null || typeof event.metadata !== 'object' || Array.isArray(event.metadata))
      ) {
        issues.push(`${at}.metadata must be an object`);
      }
      if (event.recordedAt !== undefined && !isIsoTime(event.recordedAt)) {
        issues.push(`${at}.recordedAt must be an ISO-8601 UTC time like 2026-01-31T12:00:00.000Z`);
      }
      if (!('data' in event) || event.data === undefined) issues.push(`${at}.data is missing (use null for no data)`);
      if (issues.length > before || !isId(streamId)) return;

      const schemaVersion = event.schemaVersion ?? registry.currentVersion(event.type);
      // Stored and returned values are what JSON can carry, not the caller's objects: copies made by the same walk.
      let data: CanonicalCopy;
      let metadata: CanonicalCopy;
      try {
        data = canonicalJsonAndCopy(event.data);
        metadata = canonicalJsonAndCopy(event.metadata ?? {});
        registry.validate(event.type, schemaVersion, event.data);
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        issues.push(`${at}: ${error.message}`);
        return;
      }
      const bytes = utf8Length(data.text, metadata.text, maxEventBytes);
      if (bytes > maxEventBytes) {
        issues.push(
          `${at} is ${bytes} bytes of data and metadata, over the limit of ${maxEventBytes}; store large payloads elsewhere and put a reference in the event, or raise maxEventBytes`,
        );
        return;
      }
      const id = event.id ?? uuidv7();
      seenIds.add(id);
      out.push(prepareEvent(streamId, id, event, schemaVersion, data, metadata, event.recordedAt ?? recordedAt));
    });
    prepared.push({
      streamId,
      expectedVersion,
      events: out,
      ...(append.fence ? { fence: { owner: append.fence.owner, epoch: append.fence.epoch } } : {}),
    });
  });

  if (issues.length > 0) {
    throw new ValidationError('nothing was appended', issues);
  }
  return prepared;
}

function prepareEvent(
  streamId: string,
  id: string,
  event: NewEvent,
  schemaVersion: number,
  data: CanonicalCopy,
  metadata: CanonicalCopy,
  recordedAt: string,
): PreparedEvent {
  return {
    id,
    idGiven: event.id !== undefined,
    type: event.type,
    schemaVersion,
    data: data.copy,
    metadata: metadata.copy as EventMetadata,
    recordedAt,
    dataJson: data.text,
    metadataJson: metadata.text,
    // The content's canonical form, from the parts already serialised.
    digest: contentDigestOfJson(id, streamId, event.type, schemaVersion, data.text, metadata.text),
  };
}

/** The UTF-8 size of the texts, or their UTF-16 length when that alone shows them within `limit` (a unit is at most 3 bytes). */
function utf8Length(a: string, b: string, limit: number): number {
  const units = a.length + b.length;
  return units * 3 <= limit ? units : Buffer.byteLength(a) + Buffer.byteLength(b);
}

function prefix(where: string, field: string): string {
  return where ? `${where}.${field}` : field;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH && !CONTROL.test(value);
}

export function isExpectedVersion(value: unknown): value is ExpectedVersion {
  return (
    value === 'any' || value === 'no_stream' || value === 'exists' || (typeof value === 'number' && Number.isInteger(value) && value >= 0)
  );
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
function isIsoTime(value: unknown): value is string {
  return typeof value === 'string' && ISO_UTC.test(value) && !Number.isNaN(Date.parse(value));
}

/** Does the expected version accept a stream currently at `actual` (0 = no stream)? */
export function expectedVersionHolds(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return actual === 0;
  if (expected === 'exists') return actual > 0;
  return expected === actual;
}
