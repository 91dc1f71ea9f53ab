import { StoreReadOnlyError, ValidationError } from '../events/errors.js';
import { storageBackendOf } from '../store/event-store.js';
import {
  compareRuns,
  decodeCursor,
  encodeCursor,
  type IndexableEvent,
  type IndexedRun,
  indexRunsWith,
  RUN_ORDERS,
  type RunIndexBackend,
  type RunIndexChange,
  type RunOrder,
  rowOf,
} from '../store/run-index.js';
import type { EventStore } from '../store/types.js';
import { RunEvents, type RunStartedData } from './events.js';
import { waitingForAfter } from './journal.js';
import { isRunStatus, RUN_STATUSES, type RunFilter, type RunStatus, type RunSummary, statusAfter } from './model/run.js';
import { runSummaries } from './run-info.js';

// Listing runs through the store's runs index (store/run-index.ts): the
// rule that says what an append does to a run's row, registered with the
// store when this module loads, and the pages read from the index. A log
// written before the index existed is indexed once, at its first listing
// (with progress); a log that cannot be written (a read-only copy) and has
// no index is listed from its streams, as before.

/** The status after an append is its last event's (statusAfter); an append that begins the run carries what it fixes. */
export function runIndexer(events: readonly IndexableEvent[]): RunIndexChange | undefined {
  const first = events[0];
  const last = events.at(-1);
  if (!first || !last) return undefined;
  const change: RunIndexChange = { status: statusAfter(last), waitingFor: waitingForAfter(last) ?? null, at: last.recordedAt };
  if (first.type === RunEvents.RunStarted && isStartData(first.data)) {
    const { runId, workflow, workflowVersion } = first.data;
    change.start = { runId, workflow, workflowVersion, startedAt: first.recordedAt };
  }
  return change;
}

indexRunsWith(runIndexer);

function isStartData(data: unknown): data is RunStartedData {
  const d = data as Partial<RunStartedData> | null;
  return typeof d?.runId === 'string' && typeof d.workflow === 'string' && typeof d.workflowVersion === 'string';
}

export interface RunPageOptions extends RunFilter {
  /** 'id' (the default): by run id; 'newest' / 'oldest': by start time. */
  order?: RunOrder;
  /** The `next` of the previous page (in the same order). */
  after?: string;
  limit?: number;
}

export interface RunPage {
  runs: RunSummary[];
  /** Pass as `after` for the following page; absent on the last. */
  next?: string;
}

/** Runs and their count per workflow and status. */
export interface RunCounts {
  total: number;
  byStatus: Partial<Record<RunStatus, number>>;
  byWorkflow: { workflow: string; status: RunStatus; runs: number }[];
}

/** Progress of a one-time indexing of an existing log. */
export type IndexProgress = (indexed: number, total: number) => void;

const REBUILD_STEP = 1000;
const building = new WeakMap<RunIndexBackend, Promise<boolean>>();

/** The index, once every run is in it; undefined when only the streams can tell (no index, or a read-only log without one). */
export async function readyIndex(store: EventStore, onProgress?: IndexProgress): Promise<RunIndexBackend | undefined> {
  const index = storageBackendOf(store)?.runIndex;
  if (!index) return undefined;
  if ((await index.state()) === 'built') return index;
  let done = building.get(index);
  if (!done) {
    done = rebuild(index, onProgress).finally(() => building.delete(index));
    building.set(index, done);
  }
  return (await done) ? index : undefined;
}

/** Indexes every run stream of a log written before the index, a step of REBUILD_STEP runs at a time. False when the log cannot be written. */
export async function rebuild(index: RunIndexBackend, onProgress?: IndexProgress): Promise<boolean> {
  const total = await index.runStreams();
  let indexed = 0;
  let after: string | undefined;
  try {
    for (;;) {
      const last = await index.rebuildStep(after, REBUILD_STEP, rowOf);
      if (last === undefined) break;
      after = last;
      indexed = Math.min(total, indexed + REBUILD_STEP);
      onProgress?.(indexed, total);
    }
    await index.markBuilt();
    return true;
  } catch (error) {
    if (error instanceof StoreReadOnlyError) return false;
    throw error;
  }
}

export function checkPageOptions(options: RunPageOptions, maxLimit: number): Required<Pick<RunPageOptions, 'order' | 'limit'>> {
  const { status, workflow, idPrefix, order = 'id', after, limit = 100 } = options;
  if (status !== undefined && !isRunStatus(status))
    throw new ValidationError(`unknown status ${JSON.stringify(status)}`, [], `use one of ${RUN_STATUSES.join(', ')}`);
  if (workflow !== undefined && (typeof workflow !== 'string' || workflow === ''))
    throw new ValidationError('the workflow filter must be a workflow name');
  if (idPrefix !== undefined && (typeof idPrefix !== 'string' || idPrefix === ''))
    throw new ValidationError('idPrefix must be the non-empty start of run ids');
  if (!RUN_ORDERS.includes(order))
    throw new ValidationError(`unknown order ${JSON.stringify(order)}`, [], `use one of ${RUN_ORDERS.join(', ')}`);
  if (!Number.isInteger(limit) || limit < 1 || limit > maxLimit)
    throw new ValidationError(`limit must be an integer from 1 to ${maxLimit}, got ${String(limit)}`);
  if (after !== undefined && (typeof after !== 'string' || after === ''))
    throw new ValidationError('after must be the "next" of the previous page');
  return { order, limit };
}

/** One page of runs, from the index when there is one. */
export async function pageOfRuns(
  store: EventStore,
  options: RunPageOptions,
  maxLimit: number,
  onProgress?: IndexProgress,
): Promise<RunPage> {
  const { order, limit } = checkPageOptions(options, maxLimit);
  const { status, workflow, idPrefix, after } = options;
  const filter: RunFilter = { ...(status ? { status } : {}), ...(workflow ? { workflow } : {}), ...(idPrefix ? { idPrefix } : {}) };
  const index = await readyIndex(store, onProgress);
  if (!index) return pageFromStreams(store, filter, order, after, limit);
  const rows = await index.page({
    ...filter,
    order,
    ...(after === undefined ? {} : { after: decodeCursor(order, after) }),
    limit: limit + 1,
  });
  const runs = rows.slice(0, limit).map(summaryOf);
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  return last ? { runs, next: encodeCursor(order, last) } : { runs };
}

function summaryOf(row: IndexedRun): RunSummary {
  return {
    runId: row.runId,
    workflow: row.workflow,
    workflowVersion: row.workflowVersion,
    // A status the runtime does not know (written by a newer build) reads as its events would: running.
    status: isRunStatus(row.status) ? row.status : 'running',
    ...(row.waitingFor === null ? {} : { waitingFor: row.waitingFor }),
    version: row.headVersion,
    startedAt: row.startedAt,
    updatedAt: row.updatedAt,
  };
}

/** Without an index: every run's two ends read, then sorted for the time orders (a read-only copy of an older log). */
async function pageFromStreams(
  store: EventStore,
  filter: RunFilter,
  order: RunOrder,
  after: string | undefined,
  limit: number,
): Promise<RunPage> {
  const runs: RunSummary[] = [];
  if (order === 'id') {
    for await (const summary of runSummaries(store, filter, after, 1000)) {
      if (runs.length === limit) return { runs, next: encodeCursor(order, runs.at(-1) as RunSummary) };
      runs.push(summary);
    }
    return { runs };
  }
  const all: RunSummary[] = [];
  for await (const summary of runSummaries(store, filter, undefined, 1000)) all.push(summary);
  all.sort((a, b) => compareRuns(order, a, b));
  const cursor = after === undefined ? undefined : decodeCursor(order, after);
  const rest = cursor === undefined ? all : all.filter((r) => compareRuns(order, r, cursor) > 0);
  const page = rest.slice(0, limit);
  return rest.length > limit ? { runs: page, next: encodeCursor(order, page.at(-1) as RunSummary) } : { runs: page };
}

/** Runs per workflow and status, from the index (or the streams without one). */
export async function countRuns(store: EventStore, onProgress?: IndexProgress): Promise<RunCounts> {
  const index = await readyIndex(store, onProgress);
  const rows: { workflow: string; status: string; runs: number }[] = [];
  if (index) rows.push(...(await index.counts()));
  else {
    const seen = new Map<string, { workflow: string; status: string; runs: number }>();
    for await (const s of runSummaries(store, {}, undefined, 1000)) {
      const k = JSON.stringify([s.workflow, s.status]);
      const row = seen.get(k) ?? { workflow: s.workflow, status: s.status, runs: 0 };
      row.runs++;
      seen.set(k, row);
    }
    rows.push(...seen.values());
  }
  const counts: RunCounts = { total: 0, byStatus: {}, byWorkflow: [] };
  for (const row of rows) {
    const status = isRunStatus(row.status) ? row.status : 'running';
    counts.total += row.runs;
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + row.runs;
    counts.byWorkflow.push({ workflow: row.workflow, status, runs: row.runs });
  }
  return counts;
}
