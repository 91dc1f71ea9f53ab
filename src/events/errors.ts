/**
 * Every error Rewind throws on purpose is a RewindError: it has a stable `code`
 * a script can switch on, and a `hint` that tells the caller what to do next.
 */
export class RewindError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
    super(hint ? `${message} (${hint})` : message, options);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
  }
}

/** Input that cannot be accepted. Nothing was written. */
export class ValidationError extends RewindError {
  readonly issues: readonly string[];

  constructor(message: string, issues: readonly string[] = [], hint?: string) {
    super('VALIDATION', issues.length > 0 ? `${message}: ${issues.join('; ')}` : message, hint);
    this.issues = issues;
  }
}

export type ExpectedVersion = number | 'any' | 'no_stream' | 'exists';

/** The stream was not at the version the writer expected. Nothing was written. */
export class ConcurrencyError extends RewindError {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  /** The stream's version when the append was refused; 0 when the stream does not exist. */
  readonly actual: number;

  constructor(streamId: string, expected: ExpectedVersion, actual: number) {
    super(
      'CONCURRENCY',
      `stream "${streamId}" expected ${describeExpected(expected)} but is at version ${actual}`,
      'read the stream again, re-decide, and append with the new expected version',
    );
    this.streamId = streamId;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The append was fenced with a lease its writer no longer holds: the stream's
 * lease lapsed and another writer took it (a run's driver paused past its
 * lease, say). Nothing was written; this writer must stop.
 */
export class LeaseLostError extends RewindError {
  readonly streamId: string;
  readonly owner: string;
  readonly epoch: number;

  constructor(streamId: string, owner: string, epoch: number) {
    super(
      'LEASE_LOST',
      `stream "${streamId}" is no longer leased to ${owner} (epoch ${epoch}): another writer took it over`,
      'stop writing to it; whoever holds its lease now goes on',
    );
    this.streamId = streamId;
    this.owner = owner;
    this.epoch = epoch;
  }
}

function describeExpected(expected: ExpectedVersion): string {
  if (expected === 'no_stream') return 'no stream';
  if (expected === 'exists') return 'an existing stream';
  if (expected === 'any') return 'any version';
  return `version ${expected}`;
}

/** An event id is already stored with different content (or in another stream). */
export class EventIdConflictError extends RewindError {
  readonly eventId: string;

  constructor(eventId: string, detail: string) {
    super(
      'EVENT_ID_CONFLICT',
      `event id ${eventId} is already stored with different content: ${detail}`,
      'event ids are idempotency keys; use a new id for a new event',
    );
    this.eventId = eventId;
  }
}

/** A store URL or option that cannot be opened. */
export class StoreConfigError extends RewindError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('STORE_CONFIG', message, hint, options);
  }
}

/** The store was used after close(). */
export class StoreClosedError extends RewindError {
  constructor() {
    super('STORE_CLOSED', 'the event store is closed', 'open a new store with openStore(url)');
  }
}

/** A write to a store opened read-only, or to a file this process may not write. Nothing was written. */
export class StoreReadOnlyError extends RewindError {
  constructor(
    what: string,
    why = 'the store was opened read-only',
    hint = 'open it without readOnly to write',
    options?: { cause?: unknown },
  ) {
    super('STORE_READ_ONLY', `cannot ${what}: ${why}`, hint, options);
  }
}

/** A stream, run, consumer or label that does not exist. */
export class NotFoundError extends RewindError {
  constructor(what: string, hint?: string) {
    super('NOT_FOUND', `${what} does not exist`, hint);
  }
}
