import { EventEmitter } from 'node:events';
import type { EventEnvelope } from '../events/envelope.js';
import { ConcurrencyError } from '../events/errors.js';
import { chainLink, GENESIS_HASH } from '../events/hash.js';
import { resultOf } from './append-result.js';
import { findStoredBatch } from './idempotency.js';
import { checkFence, leaseFree } from './leases.js';
import { MemoryRunIndex } from './memory/run-index.js';
import { MemoryRunQueue } from './memory/run-queue.js';
import { expectedVersionHolds } from './prepare.js';
import type { RunQueue } from './run-queue.js';
import { isSystemStream, readsSystemStreams } from './system-streams.js';
import type {
  AppendResult,
  AppendTransactionHook,
  EventFilter,
  LeaseAttempt,
  ListStreamsOptions,
  PreparedAppend,
  RawRow,
  ReadAllPage,
  ReadOptions,
  Snapshot,
  StorageBackend,
  StreamInfo,
  StreamLease,
  SyncProjectionHost,
} from './types.js';

/** A stored event keeps its JSON as text, so every read hands out a fresh copy, as a database would. */
interface Row {
  id: string;
  streamId: string;
  version: number;
  position: number;
  type: string;
  schemaVersion: number;
  dataJson: string;
  metadataJson: string;
  recordedAt: string;
  hash: string;
  digest: string;
}

/** The in-memory backend: for tests and examples. Single process, nothing survives close(). */
export class MemoryBackend implements StorageBackend {
  readonly name = 'memory';
  readonly pollIntervalMs = Number.POSITIVE_INFINITY;
  readonly densePositions = true;
  readonly #log: Row[] = [];
  readonly #streams = new Map<string, Row[]>();
  readonly #byId = new Map<string, Row>();
  readonly #checkpoints = new Map<string, number>();
  readonly #snapshots = new Map<string, Snapshot<string>[]>();
  readonly #events = new EventEmitter().setMaxListeners(0);
  readonly #appendHooks = new Set<AppendTransactionHook>();
  readonly #leases = new Map<string, StreamLease>();
  readonly runIndex = new MemoryRunIndex(() => this.#streams.entries());
  readonly projectionHost: SyncProjectionHost = {
    kind: 'memory',
    readAllSync: (from, limit, filter) => this.#readAll(from, limit, filter),
    readStreamSync: (streamId, toVersion) => (this.#streams.get(streamId) ?? []).slice(0, toVersion).map(toEnvelope),
    addAppendHook: (hook) => {
      this.#appendHooks.add(hook);
      return () => this.#appendHooks.delete(hook);
    },
  };

  async append(appends: PreparedAppend[]): Promise<AppendResult[]> {
    // Decide everything before writing anything: all or nothing.
    const plan = appends.map((append) => {
      const stored = findStoredBatch(append, (id) => this.#byId.get(id));
      if (stored) return { stored };
      checkFence(append.streamId, append.fence, this.#leases.get(append.streamId));
      const rows = this.#streams.get(append.streamId);
      const actual = rows?.length ?? 0;
      if (!expectedVersionHolds(append.expectedVersion, actual)) {
        throw new ConcurrencyError(append.streamId, append.expectedVersion, actual);
      }
      return { append };
    });

    const logLength = this.#log.length;
    const fresh: Row[] = [];
    const results = plan.map(({ stored, append }) => {
      if (stored) return resultOf(stored.map(toEnvelope));
      const { streamId, events } = append as PreparedAppend;
      let rows = this.#streams.get(streamId);
      if (!rows) {
        rows = [];
        this.#streams.set(streamId, rows);
      }
      const written: Row[] = [];
      for (const event of events) {
        const version = rows.length + 1;
        const previous = rows[rows.length - 1]?.hash ?? GENESIS_HASH;
        const row: Row = {
          id: event.id,
          streamId,
          version,
          position: this.#log.length + 1,
          type: event.type,
          schemaVersion: event.schemaVersion,
          dataJson: event.dataJson,
          metadataJson: event.metadataJson,
          recordedAt: event.recordedAt,
          hash: chainLink(previous, version, event.recordedAt, event.digest),
          digest: event.digest,
        };
        rows.push(row);
        this.#log.push(row);
        this.#byId.set(row.id, row);
        written.push(row);
        fresh.push(row);
      }
      return resultOf(written.map(toEnvelope));
    });
    const visible = this.#appendHooks.size > 0 ? fresh.filter((row) => !isSystemStream(row.streamId)) : [];
    if (visible.length > 0) {
      const undos: (() => void)[] = [];
      try {
        const envelopes = visible.map(toEnvelope);
        for (const hook of this.#appendHooks) {
          const undo = hook(envelopes);
          if (undo) undos.push(undo);
        }
      } catch (error) {
        // No transaction to roll back: what the earlier hooks wrote goes first, then the events.
        for (const undo of undos.reverse()) undo();
        this.#undo(logLength);
        throw error;
      }
    }
    queueMicrotask(() => this.#events.emit('append'));
    return results;
  }

  async acquireLease(streamId: string, owner: string, leaseMs: number): Promise<LeaseAttempt> {
    const current = this.#leases.get(streamId);
    const now = Date.now();
    if (current && !leaseFree(current, owner, now)) return { acquired: false, holder: { ...current } };
    const lease: StreamLease = { streamId, owner, epoch: (current?.epoch ?? 0) + 1, until: now + leaseMs };
    this.#leases.set(streamId, lease);
    return { acquired: true, lease: { ...lease } };
  }

  async renewLeases(owner: string, streamIds: readonly string[], leaseMs: number): Promise<string[]> {
    const until = Date.now() + leaseMs;
    return streamIds.filter((id) => {
      const lease = this.#leases.get(id);
      if (lease?.owner !== owner || lease.until === 0) return false;
      lease.until = until;
      return true;
    });
  }

  async releaseLease(streamId: string, owner: string, epoch: number): Promise<void> {
    const lease = this.#leases.get(streamId);
    if (lease?.owner === owner && lease.epoch === epoch) lease.until = 0;
  }

  async leaseOf(streamId: string): Promise<StreamLease | undefined> {
    const lease = this.#leases.get(streamId);
    return lease && { ...lease };
  }

  async changeCounter(): Promise<number> {
    return this.#log.length;
  }

  /** Takes back everything appended after the log had `length` events: a hook refused the append. */
  #undo(length: number): void {
    for (const row of this.#log.splice(length)) {
      this.#byId.delete(row.id);
      const rows = this.#streams.get(row.streamId) as Row[];
      rows.pop();
      if (rows.length === 0) this.#streams.delete(row.streamId);
    }
  }

  async read(streamId: string, options: ReadOptions & { direction: 'forward' | 'backward' }): Promise<EventEnvelope[]> {
    const rows = this.#streams.get(streamId) ?? [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const out: EventEnvelope[] = [];
    if (options.direction === 'forward') {
      const last = Math.min(options.to ?? rows.length, rows.length);
      for (let v = Math.max(options.from ?? 1, 1); v <= last && out.length < limit; v++) out.push(toEnvelope(rows[v - 1] as Row));
    } else {
      const first = Math.max(options.to ?? 1, 1);
      for (let v = Math.min(options.from ?? rows.length, rows.length); v >= first && out.length < limit; v--) {
        out.push(toEnvelope(rows[v - 1] as Row));
      }
    }
    return out;
  }

  async readAll(from: number, limit: number, filter: EventFilter | undefined): Promise<ReadAllPage> {
    return this.#readAll(from, limit, filter);
  }

  #readAll(from: number, limit: number, filter: EventFilter | undefined): ReadAllPage {
    const events: EventEnvelope[] = [];
    const types = filter?.types ? new Set(filter.types) : undefined;
    const system = readsSystemStreams(filter);
    for (let i = Math.max(from - 1, 0); i < this.#log.length && events.length < limit; i++) {
      const row = this.#log[i] as Row;
      if (!system && isSystemStream(row.streamId)) continue;
      if (filter?.streamPrefix !== undefined && !row.streamId.startsWith(filter.streamPrefix)) continue;
      if (types && !types.has(row.type)) continue;
      events.push(toEnvelope(row));
    }
    return { events, scannedTo: this.#log.length };
  }

  async scanLog(from: number, to: number, limit: number): Promise<RawRow[]> {
    return this.#log
      .slice(Math.max(from - 1, 0), Math.min(to, this.#log.length))
      .slice(0, limit)
      .map(toRaw);
  }

  async scanStream(streamId: string, fromVersion: number, limit: number): Promise<RawRow[]> {
    return (this.#streams.get(streamId) ?? [])
      .slice(Math.max(fromVersion - 1, 0))
      .slice(0, limit)
      .map(toRaw);
  }

  async emptyStreams(): Promise<string[]> {
    // A stream's rows are only ever taken back all together with its entry (#undo).
    return [];
  }

  async streamVersion(streamId: string): Promise<number> {
    return this.#streams.get(streamId)?.length ?? 0;
  }

  async listStreams(options: ListStreamsOptions): Promise<StreamInfo[]> {
    const ids = [...this.#streams.keys()]
      .filter(
        (id) => (options.prefix === undefined || id.startsWith(options.prefix)) && (options.after === undefined || id > options.after),
      )
      .sort()
      .slice(0, options.limit);
    return ids.map((streamId) => {
      const last = (this.#streams.get(streamId) as Row[]).at(-1) as Row;
      return { streamId, version: last.version, head: last.hash, position: last.position };
    });
  }

  async headPosition(): Promise<number> {
    return this.#log.length;
  }

  async saveCheckpoint(consumer: string, position: number): Promise<void> {
    this.#checkpoints.set(consumer, position);
  }

  async loadCheckpoint(consumer: string): Promise<number | undefined> {
    return this.#checkpoints.get(consumer);
  }

  async saveSnapshot(snapshot: Snapshot<string>, replaceOlder: boolean): Promise<void> {
    const key = `${snapshot.reducerVersion}\u0000${snapshot.streamId}`;
    const list = (this.#snapshots.get(key) ?? []).filter(
      (s) => s.version !== snapshot.version && !(replaceOlder && s.version < snapshot.version),
    );
    list.push(snapshot);
    list.sort((a, b) => a.version - b.version);
    this.#snapshots.set(key, list);
  }

  async loadSnapshot(streamId: string, reducerVersion: string, atOrBefore: number | undefined): Promise<Snapshot<string> | undefined> {
    const list = this.#snapshots.get(`${reducerVersion}\u0000${streamId}`) ?? [];
    return list.filter((s) => atOrBefore === undefined || s.version <= atOrBefore).at(-1);
  }

  onAppend(listener: () => void): () => void {
    this.#events.on('append', listener);
    return () => this.#events.off('append', listener);
  }

  async openRunQueue(): Promise<RunQueue> {
    return new MemoryRunQueue();
  }

  async close(): Promise<void> {
    this.#events.removeAllListeners();
  }
}

function toRaw(row: Row): RawRow {
  const { dataJson: data, metadataJson: metadata, ...rest } = row;
  return { ...rest, data, metadata };
}

function toEnvelope(row: Row): EventEnvelope {
  return {
    id: row.id,
    streamId: row.streamId,
    version: row.version,
    position: row.position,
    type: row.type,
    schemaVersion: row.schemaVersion,
    data: JSON.parse(row.dataJson),
    metadata: JSON.parse(row.metadataJson),
    recordedAt: row.recordedAt,
    hash: row.hash,
  };
}
