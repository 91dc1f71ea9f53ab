import type { EventEnvelope, Json } from '../../events/envelope.js';
import { RewindError, ValidationError } from '../../events/errors.js';

/**
 * The events a LangGraph thread is made of. One stream per (thread, checkpoint
 * namespace), so a subgraph's checkpoints chain separately from its parent's
 * and two writers on different threads never contend.
 */
export const LangGraphEvents = {
  /** A checkpoint, with the values of only the channels whose version changed. */
  Checkpoint: 'LangGraphCheckpoint',
  /** Pending writes of one task against one checkpoint. */
  Writes: 'LangGraphWrites',
  /** deleteThread: everything before it in the stream is hidden. */
  ThreadDeleted: 'LangGraphThreadDeleted',
  /** Retention: these checkpoints are hidden, and kept ones re-linked to their nearest kept ancestor. */
  Pruned: 'LangGraphPruned',
  /** Rollback: the named checkpoints leave the effective history; the target is the latest again. */
  RolledBack: 'LangGraphRolledBack',
} as const;

/**
 * A value as the saver's serde produced it, in a JSON-safe form: serde JSON is
 * embedded as JSON (smallest, and readable in the log), anything else as base64.
 */
export type StoredValue = { j: Json } | { t: string; b: string };

export type Version = number | string;

/**
 * One channel's value at one version. `base` + `tail`: the value is the value
 * at version `base` (an array) with `tail` appended, which is how growing
 * lists (messages) cost O(new items) per step instead of O(whole list).
 */
export type StoredBlob = ({ v: Version } & StoredValue) | { v: Version; base: Version; tail: Json[] } | { v: Version; empty: true };

export interface CheckpointData {
  id: string;
  parent: string | null;
  /** The checkpoint without channel_values. */
  checkpoint: StoredValue;
  metadata: StoredValue;
  values: Record<string, StoredBlob>;
}

export interface StoredWrite {
  idx: number;
  channel: string;
  value: StoredValue;
}

export interface WritesData {
  checkpoint: string;
  task: string;
  path?: string;
  writes: StoredWrite[];
}

export interface ThreadDeletedData {
  threadId: string;
  ns: string;
}

export interface PrunedData {
  pruned: string[];
  /** child id -> its new parent (null: it became the root) */
  relinked: Record<string, string | null>;
  keepLast: number | null;
  newerThan: string | null;
}

export interface RolledBackData {
  target: string;
  reason: string;
  rolledBack: string[];
  previousHead: string | null;
}

/** The data of each event type of a thread's stream: the one place a type says what its data holds. */
export interface LangGraphEventDataMap {
  LangGraphCheckpoint: CheckpointData;
  LangGraphWrites: WritesData;
  LangGraphThreadDeleted: ThreadDeletedData;
  LangGraphPruned: PrunedData;
  LangGraphRolledBack: RolledBackData;
}

export type LangGraphEventType = (typeof LangGraphEvents)[keyof typeof LangGraphEvents];

/** One event type's envelope, its data typed. */
export type LangGraphEventOf<T extends LangGraphEventType> = EventEnvelope<T, LangGraphEventDataMap[T]>;

/** Every event of a thread's stream: a discriminated union on `type`, so a switch narrows `data`. */
export type LangGraphEvent = { [T in LangGraphEventType]: LangGraphEventOf<T> }[LangGraphEventType];

const TYPES = new Set<string>(Object.values(LangGraphEvents));

/**
 * The saver's view of a stored event: typed when its type is one of the
 * saver's, undefined otherwise. The saver wrote these events itself, so the
 * type names the data's shape; this is the one place that trust is spelled out.
 */
export function asLangGraphEvent(event: EventEnvelope): LangGraphEvent | undefined {
  return TYPES.has(event.type) ? (event as LangGraphEvent) : undefined;
}

/** Two writers raced on one thread: appending would have forked its chain silently. Nothing was written. */
export class CheckpointConflictError extends RewindError {
  readonly threadId: string;
  readonly checkpointNs: string;

  constructor(threadId: string, checkpointNs: string, detail: string) {
    super(
      'LANGGRAPH_CONFLICT',
      `thread "${threadId}"${checkpointNs ? ` (namespace "${checkpointNs}")` : ''}: ${detail}`,
      'another writer changed this thread; reload it with getTuple() and run again from its latest checkpoint',
    );
    this.threadId = threadId;
    this.checkpointNs = checkpointNs;
  }
}

const MAX_STREAM_ID = 200;

/**
 * `<prefix>:<thread>:<ns>` with both parts URI-encoded, so neither can hold a
 * ':' and no two (thread, ns) pairs share a stream, and `<prefix>:<thread>:`
 * is a prefix of exactly that thread's streams.
 */
export function streamIdOf(prefix: string, threadId: string, ns: string): string {
  const id = `${threadPrefix(prefix, threadId)}${encodeURIComponent(ns)}`;
  if (id.length > MAX_STREAM_ID) {
    throw new ValidationError(
      `thread_id and checkpoint_ns are too long together (stream id of ${id.length} characters, at most ${MAX_STREAM_ID})`,
      [],
      'use shorter thread ids (a UUID is fine)',
    );
  }
  return id;
}

export function threadPrefix(prefix: string, threadId: string): string {
  return `${prefix}:${encodeURIComponent(threadId)}:`;
}

export function parseStreamId(prefix: string, streamId: string): { threadId: string; ns: string } | undefined {
  if (!streamId.startsWith(`${prefix}:`)) return undefined;
  const parts = streamId.slice(prefix.length + 1).split(':');
  if (parts.length !== 2) return undefined;
  try {
    return { threadId: decodeURIComponent(parts[0] as string), ns: decodeURIComponent(parts[1] as string) };
  } catch {
    return undefined;
  }
}
