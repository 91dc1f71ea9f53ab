import {
  compareRuns,
  type IndexableEvent,
  type IndexedRun,
  RUN_STREAM_PREFIX,
  type RunCount,
  type RunIndexBackend,
  type RunIndexQuery,
  type RunIndexState,
  rowOf,
} from '../run-index.js';

interface StoredEvent {
  type: string;
  dataJson: string;
  recordedAt: string;
  version: number;
}

/**
 * The memory backend's runs index: worked out from the streams at each query
 * (the reference the SQL backends' rows must agree with), so there is nothing
 * to keep in step and nothing to rebuild.
 */
export class MemoryRunIndex implements RunIndexBackend {
  readonly #streams: () => Iterable<[string, readonly StoredEvent[]]>;

  constructor(streams: () => Iterable<[string, readonly StoredEvent[]]>) {
    this.#streams = streams;
  }

  async state(): Promise<RunIndexState> {
    return 'built';
  }

  #runs(): IndexedRun[] {
    const runs: IndexedRun[] = [];
    for (const [streamId, events] of this.#streams()) {
      const first = events[0];
      const last = events.at(-1);
      if (!streamId.startsWith(RUN_STREAM_PREFIX) || !first || !last) continue;
      const row = rowOf({ streamId, first: copy(first), last: copy(last), version: last.version });
      if (row)
        runs.push({ ...row, runId: streamId.slice(RUN_STREAM_PREFIX.length), headVersion: last.version, updatedAt: last.recordedAt });
    }
    return runs;
  }

  async page(query: RunIndexQuery): Promise<IndexedRun[]> {
    const { status, workflow, idPrefix, order, after, limit } = query;
    return this.#runs()
      .filter((r) => (status === undefined || r.status === status) && (workflow === undefined || r.workflow === workflow))
      .filter((r) => idPrefix === undefined || r.runId.startsWith(idPrefix))
      .filter((r) => after === undefined || compareRuns(order, r, after) > 0)
      .sort((a, b) => compareRuns(order, a, b))
      .slice(0, limit);
  }

  async counts(): Promise<RunCount[]> {
    const counts = new Map<string, RunCount>();
    for (const { workflow, status } of this.#runs()) {
      const k = JSON.stringify([workflow, status]);
      const c = counts.get(k) ?? { workflow, status, runs: 0 };
      c.runs++;
      counts.set(k, c);
    }
    return [...counts.values()].sort((a, b) =>
      a.workflow === b.workflow ? compareText(a.status, b.status) : compareText(a.workflow, b.workflow),
    );
  }

  async runStreams(): Promise<number> {
    return this.#runs().length;
  }

  async rebuildStep(): Promise<string | undefined> {
    return undefined;
  }

  async markBuilt(): Promise<void> {}
}

/** A stored event keeps its data as text: the indexer gets a fresh copy. */
function copy(event: StoredEvent): IndexableEvent {
  return { type: event.type, data: JSON.parse(event.dataJson), recordedAt: event.recordedAt };
}

const compareText = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
