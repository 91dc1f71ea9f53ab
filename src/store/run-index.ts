import { ValidationError } from '../events/errors.js';

// The runs index: one row per run, kept in the same transaction as the run's
// events, so listing runs by status or workflow reads one page of an index
// instead of every run's stream. The store keeps the rows; what a run's
// events say about it (its status) is the runtime's to decide, through the
// indexer it registers (runtime/run-index.ts). A row is written when a run
// starts and when its status changes, not on every append: a step that
// leaves the run running writes nothing here.

/** Streams of runs: `run-<run id>`. */
export const RUN_STREAM_PREFIX = 'run-';

/** What an event must show the indexer: as prepared for an append, or as read back. */
export interface IndexableEvent {
  type: string;
  data: unknown;
  recordedAt: string;
}

/** What a run's first event fixes for good. */
export interface RunStart {
  runId: string;
  workflow: string;
  workflowVersion: string;
  startedAt: string;
}

/** What one append says about its run: its status after the append's last event, and its start when the append holds it. */
export interface RunIndexChange {
  status: string;
  /** The signal a waiting run waits for (null when it does not wait). */
  waitingFor: string | null;
  /** When the status was reached: the last event's recordedAt. */
  at: string;
  start?: RunStart;
}

/** Pure: the change one append of a run's events makes to its row, or undefined when it makes none the indexer can tell. */
export type RunIndexer = (events: readonly IndexableEvent[]) => RunIndexChange | undefined;

/** One run in the index. `version` is the stream version its status was read at. */
export interface RunIndexRow extends RunStart {
  status: string;
  waitingFor: string | null;
  changedAt: string;
  version: number;
}

/** 'id': by run id; 'newest' / 'oldest': by start time. */
export const RUN_ORDERS = ['id', 'newest', 'oldest'] as const;
export type RunOrder = (typeof RUN_ORDERS)[number];

/** Where a page starts: after this run, in the page's order (its start time too for the time orders). */
export interface RunCursor {
  runId: string;
  startedAt?: string;
}

export interface RunIndexQuery {
  status?: string;
  workflow?: string;
  /** Only runs whose id starts with this. */
  idPrefix?: string;
  order: RunOrder;
  after?: RunCursor;
  limit: number;
}

/** A listed run: its row, and the head of its stream (its newest event). */
export interface IndexedRun extends RunIndexRow {
  headVersion: number;
  updatedAt: string;
}

export interface RunCount {
  workflow: string;
  status: string;
  runs: number;
}

/** Whether the index holds every run: 'pending' for a log written before it existed, until it is rebuilt. */
export type RunIndexState = 'built' | 'pending';

/** A run's stream as the rebuild reads it: its first and newest events. */
export interface RunStreamEnds {
  streamId: string;
  first: IndexableEvent;
  last: IndexableEvent;
  version: number;
}

/** What a backend keeps for the runs index. Optional: a backend without one lists runs by reading their streams. */
export interface RunIndexBackend {
  state(): Promise<RunIndexState>;
  /** Up to `limit` runs in the query's order, after its cursor. */
  page(query: RunIndexQuery): Promise<IndexedRun[]>;
  counts(): Promise<RunCount[]>;
  /** How many run streams the log holds (for a rebuild's progress). */
  runStreams(): Promise<number>;
  /**
   * One step of the rebuild: the next `limit` run streams after `after`, each
   * summarised by `summarise` and written, atomically with respect to appends
   * to those streams (an append waits, or went before and is read). Returns
   * the last stream id handled, or undefined when none was left.
   */
  rebuildStep(
    after: string | undefined,
    limit: number,
    summarise: (ends: RunStreamEnds) => RunIndexRow | undefined,
  ): Promise<string | undefined>;
  /** Records that every run is indexed. */
  markBuilt(): Promise<void>;
}

let indexer: RunIndexer | undefined;

/** Registers how run events change a run's row; the runtime does, once, when it is loaded. */
export function indexRunsWith(fn: RunIndexer): void {
  indexer = fn;
}

/** The change an append to this stream makes to the runs index, if any. */
export function runIndexChange(streamId: string, events: readonly IndexableEvent[]): RunIndexChange | undefined {
  return indexer && events.length > 0 && streamId.startsWith(RUN_STREAM_PREFIX) ? indexer(events) : undefined;
}

/** The row a whole run's ends give, with the indexer's rules (the rebuild's). */
export function rowOf(ends: RunStreamEnds): RunIndexRow | undefined {
  const change = indexer?.([ends.first, ends.last]);
  if (!change?.start) return undefined;
  return { ...change.start, status: change.status, waitingFor: change.waitingFor, changedAt: change.at, version: ends.version };
}

/** The order of a page as the SQL backends sort it: run id, or (start time, run id), element by element; 'newest' descending. */
export function compareRuns(order: RunOrder, a: RunCursor, b: RunCursor): number {
  const x = order === 'id' ? [a.runId] : [a.startedAt ?? '', a.runId];
  const y = order === 'id' ? [b.runId] : [b.startedAt ?? '', b.runId];
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i]) return (order === 'newest' ? -1 : 1) * ((x[i] as string) < (y[i] as string) ? -1 : 1);
  return 0;
}

/** Cursor text: the run id in id order; the start time, a space and the run id in the time orders (no ISO time holds a space). */
export function encodeCursor(order: RunOrder, run: RunStart): string {
  return order === 'id' ? run.runId : `${run.startedAt} ${run.runId}`;
}

export function decodeCursor(order: RunOrder, text: string): RunCursor {
  if (order === 'id') return { runId: text };
  const space = text.indexOf(' ');
  if (space <= 0 || space === text.length - 1)
    throw new ValidationError(
      `the cursor ${JSON.stringify(text)} is not one of a list ordered ${order}`,
      [],
      'pass the "next" of the previous page, listed in the same order',
    );
  return { startedAt: text.slice(0, space), runId: text.slice(space + 1) };
}
