/** JSON values as they are stored: what survives a round trip through JSON.stringify/parse. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Well-known metadata fields; anything else may be added freely. */
export interface EventMetadata {
  correlationId?: string;
  causationId?: string;
  /** Who caused the event: a user, a service or an agent name. */
  actor?: string;
  traceId?: string;
  idempotencyKey?: string;
  [key: string]: Json | undefined;
}

/** What a caller hands to append(). The store fills in the rest. */
export interface NewEvent<T extends string = string, D = unknown> {
  /** Unique id; re-appending an event with a stored id is idempotent. Generated when absent. */
  id?: string;
  type: T;
  data: D;
  schemaVersion?: number;
  metadata?: EventMetadata;
  /** Normally assigned by the store; a caller may supply it when importing history. */
  recordedAt?: string;
}

/** An event as the log holds it. */
export interface EventEnvelope<T extends string = string, D = unknown> {
  id: string;
  streamId: string;
  /** 1, 2, 3… within the stream. */
  version: number;
  /** Global order across all streams; increasing, not necessarily dense. */
  position: number;
  type: T;
  schemaVersion: number;
  data: D;
  metadata: EventMetadata;
  /** ISO-8601 UTC timestamp. */
  recordedAt: string;
  /** hex SHA-256 link of the stream's hash chain (see events/hash.ts). */
  hash: string;
}
