import type { EventEnvelope } from '../../events/envelope.js';
import type { EventFilter } from '../../store/types.js';
import type { Changeset, DocView } from '../apply.js';
import type { Doc } from '../definition.js';
import type { CheckedQuery, FoundDoc } from '../query.js';

/** A projection's row in the registry: which generation queries see, and how far each generation got. */
export interface ProjectionRecord {
  name: string;
  /** Version of the definition that built the active generation. */
  version: number;
  /** Documents of this generation are the ones queries see. */
  generation: number;
  /** Last global position applied to the active generation (0: none). */
  position: number;
  /** recordedAt of the last event applied, for the lag in seconds. */
  lastEventAt: string | null;
  /** Set when a handler threw: the projection is stopped until resumed. */
  error: string | null;
  /** The event it stopped at: resume starts again from it. */
  errorPosition: number | null;
  /** A generation being built from position 0, swapped in when caught up. */
  rebuild: { generation: number; version: number; position: number; lastEventAt: string | null } | null;
  updatedAt: string;
}

export type Target = 'active' | 'rebuild';

/** A page of events to apply to one generation, conditional on that generation still being at `from`. */
export interface Batch {
  name: string;
  target: Target;
  generation: number;
  /** The position the caller read the generation at: the commit is refused if it moved. */
  from: number;
  /** The position the generation reaches (the page may end past its last event). */
  to: number;
  lastEventAt: string | null;
  /** As read from the log (not upcast). */
  events: EventEnvelope[];
  applier: Applier;
}

/** A projection's code as storage needs it: what to preload (PostgreSQL) and what to apply. */
export interface Applier {
  /** The part of the log the projection reads (types, stream prefix), markers included. */
  filter: EventFilter;
  /** The document an event (as stored) touches; undefined when none or when key() fails (apply reports that). */
  keyOf(event: EventEnvelope): string | undefined;
  /** The marker events whose stream history apply() will ask the view for. */
  rollbacks(events: EventEnvelope[]): EventEnvelope[];
  apply(events: EventEnvelope[], view: DocView): Changeset;
}

/** An inline projection as the store sees it: applied to the events of each append, in its transaction. */
export interface InlineProjection {
  name: string;
  version: number;
  /** Throws to fail the append. */
  applier: Applier;
}

/**
 * Where read models live, per backend. Every write happens in one transaction
 * with the position it brings the projection to, and is conditional on the
 * position it started from: two consumers of one projection (two processes)
 * never apply an event twice, and a crash never half-applies a page.
 */
export interface ReadModelStore {
  records(): Promise<ProjectionRecord[]>;
  record(name: string): Promise<ProjectionRecord | undefined>;
  /** Creates the registry row if absent: generation 1, position 0, this version. Records whether it is inline. */
  ensure(name: string, version: number, mode?: 'inline' | 'async'): Promise<ProjectionRecord>;
  /** 'moved' when the generation is no longer at `batch.from` (someone else got there first); nothing written then. */
  commit(batch: Batch): Promise<'ok' | 'moved'>;
  /** Stops the projection at an event, unless it already moved past `from`. */
  fail(name: string, from: number, target: Target, message: string, position: number): Promise<void>;
  /** Clears the error; false when there was none. */
  resume(name: string): Promise<boolean>;
  /** Starts (or restarts) a rebuild into a fresh generation at position 0. */
  startRebuild(name: string, version: number): Promise<ProjectionRecord>;
  /**
   * With appends held off: applies every event after `from` to the rebuild
   * generation and makes it the active one; queries see the old generation
   * up to this commit and the new one after it.
   */
  finishRebuild(name: string, generation: number, from: number, applier: Applier): Promise<'ok' | 'moved'>;
  get(name: string, key: string): Promise<Doc | undefined>;
  find(name: string, query: CheckedQuery): Promise<FoundDoc[]>;
  /**
   * Applies these projections in every append's transaction from now on
   * (each catching up first if appends were made without it); returns the removal.
   */
  installInline(projections: InlineProjection[]): () => void;
  close(): Promise<void>;
}
