import { isDeepStrictEqual } from 'node:util';
import type { RunnableConfig } from '@langchain/core/runnables';
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  INTERRUPT,
  JsonPlusSerializer,
  maxChannelVersion,
  type PendingWrite,
  type SerializerProtocol,
  TASKS,
  WRITES_IDX_MAP,
} from '@langchain/langgraph-checkpoint';
import type { EventEnvelope, EventMetadata, Json, NewEvent } from '../../events/envelope.js';
import { ConcurrencyError, NotFoundError, ValidationError } from '../../events/errors.js';
import type { EventStore, StreamAppend } from '../../store/types.js';
import { copyPlain, type PlannedValue, planPlain, planText, type Submitted } from './channel-values.js';
import {
  CheckpointConflictError,
  type CheckpointData,
  LangGraphEvents,
  type PrunedData,
  parseStreamId,
  type RolledBackData,
  type StoredBlob,
  type StoredValue,
  type StoredWrite,
  streamIdOf,
  type ThreadDeletedData,
  threadPrefix,
  type Version,
  type WritesData,
} from './events.js';
import {
  type CheckpointStatus,
  INDEX_SNAPSHOT_FORMAT,
  type IndexedCheckpoint,
  type IndexSnapshot,
  type LoadedValue,
  loaded,
  StreamIndex,
} from './thread-index.js';

export interface RewindCheckpointSaverOptions {
  serde?: SerializerProtocol;
  /** First part of every stream id; lets several apps (or test runs) share one store. Default 'langgraph'. */
  prefix?: string;
  /**
   * Streams (thread × namespace) whose index stays in memory. Default 100. An
   * index holds the thread's checkpoints and values: about 1-2 MB for a
   * 300-step agent thread. Opening an evicted thread again costs a snapshot
   * read (about 1 ms).
   */
  cacheSize?: number;
  /** Recorded as the `actor` of every event this saver appends. */
  actor?: string;
}

export interface PruneOptions {
  /** Keep this many newest checkpoints of each namespace. */
  keepLast?: number;
  /** Keep checkpoints whose `ts` is at or after this time. */
  newerThan?: Date;
  /** Only this namespace; default every namespace of the thread. */
  checkpointNs?: string;
}

export interface PruneResult {
  pruned: string[];
  kept: number;
}

export interface RollbackResult {
  target: string;
  rolledBack: string[];
}

export interface ThreadSummary {
  threadId: string;
  namespaces: string[];
  /** When the thread's newest event was recorded. */
  updatedAt: string;
}

export interface CheckpointRecord {
  checkpointId: string;
  checkpointNs: string;
  parentId: string | null;
  status: CheckpointStatus;
  /** Stream version of the event that recorded it. */
  version: number;
  recordedAt: string;
}

const READ_PAGE = 5000;

/** A channel value of a put: empty (no plan), planned, or still being serialised by the serde. */
interface Planned {
  channel: string;
  version: Version;
  plan?: PlannedValue;
  typed?: StoredValue;
  last?: Submitted;
  serialized?: Promise<[string, Uint8Array]>;
}

/** What a caller needs of a stream's index beyond its latest checkpoint. */
interface Need {
  history?: boolean;
  checkpoint?: string;
}

/** Can the index answer? A full one always can; one started from a snapshot knows only the latest and what followed. */
function answers(index: StreamIndex, need: Need): boolean {
  return (
    !index.partial ||
    (!index.needsHistory && need.history !== true && (need.checkpoint === undefined || index.checkpoints.has(need.checkpoint)))
  );
}

/** A put or putWrites waiting for its stream's next append. */
interface Pending {
  put: boolean;
  /** The checkpoint whose writes it must know (putWrites). */
  requires?: string;
  /** The event to append, decided against the index as it is now; undefined when there is nothing to write. */
  build(index: StreamIndex): NewEvent | undefined;
  /** After a lost race: the error when the events appended meanwhile make this one unsound. */
  conflict?(meanwhile: EventEnvelope[]): Error | undefined;
  resolve(): void;
  reject(error: unknown): void;
}
const MAX_ATTEMPTS = 8;
/** A snapshot of a stream's index every this many events: a saver opening a thread reads at most that many. */
const SNAPSHOT_EVERY = 64;

/** Values some of which may still be on their way: plain JSON, the common case, costs no promise. */
function settled<T>(values: (T | Promise<T>)[]): T[] | Promise<T[]> {
  return values.some((v) => v instanceof Promise) ? Promise.all(values) : (values as T[]);
}

/**
 * A LangGraph checkpointer over Rewind's event log. Each (thread, namespace)
 * is a stream; checkpoints and pending writes are events, so a thread's
 * history is hash-chained and nothing is ever overwritten. An in-memory
 * index per stream catches up from the log on every call, which keeps
 * several processes sharing one store correct, and every append names the
 * version it was decided on, so two writers can never fork a thread silently.
 */
export class RewindCheckpointSaver extends BaseCheckpointSaver {
  readonly store: EventStore;
  readonly prefix: string;
  readonly #cacheSize: number;
  readonly #metadata: EventMetadata | undefined;
  readonly #indexes = new Map<string, StreamIndex>();
  readonly #building = new Map<string, Promise<StreamIndex>>();
  readonly #submitted = new Map<string, Map<string, Submitted>>();
  readonly #locks = new Map<string, Promise<void>>();
  readonly #queues = new Map<string, Pending[]>();
  /** JsonPlusSerializer only rebuilds objects carrying an `lc` key; JSON without one loads as plain JSON. */
  readonly #plainJson: boolean;

  constructor(store: EventStore, options: RewindCheckpointSaverOptions = {}) {
    super(options.serde);
    const prefix = options.prefix ?? 'langgraph';
    if (typeof prefix !== 'string' || prefix.length === 0 || prefix.includes(':')) {
      throw new ValidationError('prefix must be a non-empty string without ":"');
    }
    const cacheSize = options.cacheSize ?? 100;
    if (!Number.isInteger(cacheSize) || cacheSize < 1) throw new ValidationError('cacheSize must be a positive integer');
    this.store = store;
    this.prefix = prefix;
    this.#cacheSize = cacheSize;
    this.#metadata = options.actor !== undefined ? { actor: options.actor } : undefined;
    this.#plainJson = Object.getPrototypeOf(this.serde) === JsonPlusSerializer.prototype;
  }

  // -------------------------------------------------------------------------
  // BaseCheckpointSaver
  // -------------------------------------------------------------------------

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    // No thread names no checkpoint (the suite asks for undefined, not an error).
    if (config?.configurable?.thread_id === undefined) return undefined;
    const { threadId, ns, checkpointId } = readConfig(config, 'getTuple');
    const index = await this.#load(streamIdOf(this.prefix, threadId, ns), { checkpoint: checkpointId });
    const entry = checkpointId ? index.checkpoints.get(checkpointId) : index.latest();
    if (!entry || entry.status === 'pruned') return undefined;
    return this.#tuple(threadId, ns, index, entry);
  }

  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const c = config?.configurable ?? {};
    const threadId = c.thread_id === undefined ? undefined : threadIdOf(c.thread_id, 'list');
    const ns: string | undefined = c.checkpoint_ns === undefined ? undefined : nsOf(c.checkpoint_ns, 'list');
    const only: string | undefined = c.checkpoint_id || undefined;
    const { limit, before, filter } = options;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0))
      throw new ValidationError('list: limit must be a non-negative integer');
    if (filter !== undefined && (filter === null || typeof filter !== 'object'))
      throw new ValidationError('list: filter must be an object');
    const beforeId: string | undefined = before?.configurable?.checkpoint_id || undefined;

    const streams =
      threadId !== undefined && ns !== undefined
        ? [{ threadId, ns, streamId: streamIdOf(this.prefix, threadId, ns) }]
        : (await this.#streams(threadId)).filter((s) => ns === undefined || s.ns === ns);

    const candidates: { id: string; threadId: string; ns: string; index: StreamIndex; entry: IndexedCheckpoint }[] = [];
    for (const s of streams) {
      const index = await this.#load(s.streamId, { history: true });
      let taken = 0;
      for (const id of index.liveIdsDescending()) {
        if (limit !== undefined && taken >= limit) break;
        if (only !== undefined && id !== only) continue;
        if (beforeId !== undefined && id >= beforeId) continue;
        const entry = index.checkpoints.get(id) as IndexedCheckpoint;
        if (filter && !(await this.#matches(loaded(entry.metadata), filter))) continue;
        candidates.push({ id, threadId: s.threadId, ns: s.ns, index, entry });
        taken++;
      }
    }
    candidates.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const end = limit === undefined ? candidates.length : Math.min(limit, candidates.length);
    for (let i = 0; i < end; i++) {
      const c = candidates[i] as (typeof candidates)[number];
      yield await this.#tuple(c.threadId, c.ns, c.index, c.entry);
    }
  }

  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const { threadId, ns, checkpointId: parent } = readConfig(config, 'put');
    checkCheckpoint(checkpoint, newVersions);
    const streamId = streamIdOf(this.prefix, threadId, ns);
    const { channel_values: values = {}, ...rest } = checkpoint;
    // Everything is captured before the first await: LangGraph does not wait for a put before its
    // next step, and a reducer that changes a list in place must not change what was put.
    const encoding = [this.#encode(rest), this.#encode(metadata ?? {})];
    const submitted = this.#submissions(streamId);
    const remember = (channel: string, next: Submitted | undefined) => (next ? submitted.set(channel, next) : submitted.delete(channel));
    const planned: Planned[] = [];
    for (const [channel, version] of Object.entries(newVersions)) {
      if (!Object.hasOwn(values, channel)) {
        remember(channel, undefined);
        planned.push({ channel, version });
        continue;
      }
      const value = (values as Record<string, unknown>)[channel];
      // Nothing put yet by this saver: the newest list in the log, if the thread is open here (only a list can grow a tail).
      const fromLog = this.#plainJson && Array.isArray(value);
      const last = submitted.get(channel) ?? (fromLog ? this.#indexes.get(streamId)?.storedItems(channel) : undefined);
      const plan = this.#plainJson ? planPlain(value, version, checkpoint.id, last) : undefined;
      if (plan) remember(channel, plan.next);
      planned.push(plan ? { channel, version, plan } : { channel, version, last, serialized: this.serde.dumpsTyped(value) });
    }
    const [stored, storedMetadata] = (await settled(encoding)) as [StoredValue, StoredValue];
    for (const p of planned) {
      if (!p.serialized) continue;
      const [type, bytes] = await p.serialized;
      if (type === 'json') p.plan = planText(decoder.decode(bytes), p.version, checkpoint.id, p.last);
      else p.typed = { t: type, b: Buffer.from(bytes).toString('base64') };
      remember(p.channel, p.plan?.next);
    }

    await this.#submit(streamId, {
      put: true,
      build: (index) => {
        const blobs: Record<string, StoredBlob> = {};
        for (const { channel, version: v, plan, typed } of planned) {
          const tail = plan?.tail;
          if (typed) blobs[channel] = { v, ...typed };
          else if (!plan) blobs[channel] = { v, empty: true };
          else if (tail && index.canExtend(channel, tail.base, tail.writer, tail.items.length))
            blobs[channel] = { v, base: tail.base, tail: tail.items };
          else blobs[channel] = { v, j: plan.full() };
        }
        const data: CheckpointData = {
          id: checkpoint.id,
          parent: parent ?? null,
          checkpoint: stored,
          metadata: storedMetadata,
          values: blobs,
        };
        return this.#event(LangGraphEvents.Checkpoint, data);
      },
      conflict: (meanwhile) => {
        const why = forkIn(meanwhile, checkpoint.id, parent ?? null);
        return why === undefined ? undefined : new CheckpointConflictError(threadId, ns, why);
      },
    });
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const { threadId, ns, checkpointId } = readConfig(config, 'putWrites');
    if (!checkpointId)
      throw new ValidationError('putWrites: config.configurable.checkpoint_id is missing', [], 'pass the config returned by put()');
    if (typeof taskId !== 'string' || taskId.length === 0) throw new ValidationError('putWrites: taskId must be a non-empty string');
    if (!Array.isArray(writes)) throw new ValidationError('putWrites: writes must be an array of [channel, value]');
    if (taskPath !== undefined && typeof taskPath !== 'string') throw new ValidationError('putWrites: taskPath must be a string');
    for (const [i, write] of writes.entries()) {
      if (!Array.isArray(write) || typeof write[0] !== 'string')
        throw new ValidationError(`putWrites: writes[${i}] must be [channel, value]`);
    }
    // All encoded before the first await, like put.
    const values = await settled(writes.map(([, value]) => this.#encode(value)));
    const encoded: StoredWrite[] = writes.map(([channel], i) => ({
      idx: WRITES_IDX_MAP[channel] ?? i,
      channel,
      value: values[i] as StoredValue,
    }));
    const streamId = streamIdOf(this.prefix, threadId, ns);
    await this.#submit(streamId, {
      put: false,
      requires: checkpointId,
      build: (index) => {
        // A regular write already stored is kept, so a retried task adds nothing to the log.
        const fresh = encoded.filter((w) => w.idx < 0 || !index.hasWrite(checkpointId, taskId, w.idx));
        if (fresh.length === 0) return undefined;
        const data: WritesData = { checkpoint: checkpointId, task: taskId, writes: fresh };
        if (taskPath) data.path = taskPath;
        return this.#event(LangGraphEvents.Writes, data);
      },
    });
  }

  /**
   * Hides every checkpoint and write of the thread behind a tombstone event in
   * each of its streams; nothing is erased, so the deletion is itself audited.
   * A later put starts the thread afresh.
   */
  async deleteThread(threadId: string): Promise<void> {
    const id = threadIdOf(threadId, 'deleteThread');
    const streams = await this.#streams(id);
    if (streams.length === 0) return;
    await this.store.appendMany(
      streams.map((s) => ({
        streamId: s.streamId,
        events: [this.#event(LangGraphEvents.ThreadDeleted, { threadId: id, ns: s.ns } satisfies ThreadDeletedData)],
      })),
    );
    for (const s of streams) {
      this.#submitted.delete(s.streamId);
      const index = this.#indexes.get(s.streamId);
      if (index) await this.#catchUp(s.streamId, index);
    }
  }

  // -------------------------------------------------------------------------
  // What the official savers lack
  // -------------------------------------------------------------------------

  /**
   * Retention. Keeps, per namespace, the newest `keepLast` checkpoints, those
   * newer than `newerThan`, the latest one and any with a pending interrupt;
   * the others are hidden by one recorded event, and each kept checkpoint is
   * re-linked to its nearest kept ancestor so parent chains stay whole.
   */
  async prune(threadId: string, options: PruneOptions): Promise<PruneResult> {
    const id = threadIdOf(threadId, 'prune');
    const issues: string[] = [];
    if (options === null || typeof options !== 'object') throw new ValidationError('prune needs options { keepLast?, newerThan? }');
    const { keepLast, newerThan, checkpointNs } = options;
    if (keepLast !== undefined && !(Number.isInteger(keepLast) && keepLast >= 1)) issues.push('keepLast must be a positive integer');
    if (newerThan !== undefined && !(newerThan instanceof Date && !Number.isNaN(newerThan.getTime())))
      issues.push('newerThan must be a valid Date');
    if (keepLast === undefined && newerThan === undefined) issues.push('give keepLast, newerThan or both');
    if (checkpointNs !== undefined && typeof checkpointNs !== 'string') issues.push('checkpointNs must be a string');
    if (issues.length) throw new ValidationError('cannot prune', issues);

    const streams = (await this.#streams(id)).filter((s) => checkpointNs === undefined || s.ns === checkpointNs);
    const result: PruneResult = { pruned: [], kept: 0 };
    for (const s of streams) {
      await this.#exclusive(s.streamId, async () => {
        const index = await this.#load(s.streamId, { history: true });
        for (let attempt = 1; ; attempt++) {
          const plan = await this.#prunePlan(index, keepLast, newerThan);
          if (plan.data.pruned.length === 0) {
            result.kept += plan.kept;
            return;
          }
          try {
            const appended = await this.store.append(s.streamId, [this.#event(LangGraphEvents.Pruned, plan.data)], {
              expectedVersion: index.version,
            });
            await this.#absorb(s.streamId, index, appended.events);
            result.pruned.push(...plan.data.pruned);
            result.kept += plan.kept;
            return;
          } catch (error) {
            if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw error;
            await this.#catchUp(s.streamId, index);
          }
        }
      });
    }
    return result;
  }

  /**
   * Makes `checkpointId` the thread's latest checkpoint again: every live
   * checkpoint recorded after it, in every namespace of the thread, is marked
   * rolled back in one atomic multi-stream append. They stay in the log and
   * can still be read by id; list() and getTuple() without an id skip them.
   * The target's pending writes are hidden too, so the undone steps run again.
   */
  async rollback(threadId: string, checkpointId: string, reason: string, options: { checkpointNs?: string } = {}): Promise<RollbackResult> {
    const id = threadIdOf(threadId, 'rollback');
    const issues: string[] = [];
    if (typeof checkpointId !== 'string' || checkpointId.length === 0) issues.push('checkpointId must be a non-empty string');
    if (typeof reason !== 'string' || reason.trim().length === 0)
      issues.push('reason must be a non-empty string (it is recorded for the audit)');
    const ns = options.checkpointNs ?? '';
    if (typeof ns !== 'string') issues.push('checkpointNs must be a string');
    if (issues.length) throw new ValidationError('cannot roll back', issues);

    const targetStream = streamIdOf(this.prefix, id, ns);
    for (let attempt = 1; ; attempt++) {
      const streams = await this.#streams(id);
      const target = (await this.#load(targetStream, { history: true })).checkpoints.get(checkpointId);
      if (!target || target.status === 'pruned') {
        throw new NotFoundError(
          `checkpoint "${checkpointId}" of thread "${id}"${ns ? ` (namespace "${ns}")` : ''}`,
          'list the thread to see its checkpoints',
        );
      }
      if (target.status === 'rolledBack')
        throw new ValidationError(`checkpoint "${checkpointId}" was itself rolled back; roll back to one of its ancestors`);
      const appends: StreamAppend[] = [];
      const rolledBack: string[] = [];
      for (const s of streams) {
        const index = await this.#load(s.streamId, { history: true });
        const after = [...index.liveIdsDescending()].filter((cid) => cid > checkpointId);
        if (after.length === 0 && s.streamId !== targetStream) continue;
        const data: RolledBackData = { target: checkpointId, reason, rolledBack: after, previousHead: index.latest()?.id ?? null };
        appends.push({ streamId: s.streamId, events: [this.#event(LangGraphEvents.RolledBack, data)], expectedVersion: index.version });
        rolledBack.push(...after);
      }
      try {
        const results = await this.store.appendMany(appends);
        for (const r of results) await this.#absorb(r.streamId, await this.#cached(r.streamId), r.events);
        return { target: checkpointId, rolledBack };
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }

  /** Threads that have a stream not ended by deleteThread. */
  async listThreads(): Promise<ThreadSummary[]> {
    const byThread = new Map<string, ThreadSummary>();
    for (const s of await this.#streams(undefined)) {
      const [last] = await this.store.read(s.streamId, { direction: 'backward', limit: 1 });
      if (!last || last.type === LangGraphEvents.ThreadDeleted) continue;
      const summary = byThread.get(s.threadId);
      if (!summary) byThread.set(s.threadId, { threadId: s.threadId, namespaces: [s.ns], updatedAt: last.recordedAt });
      else {
        summary.namespaces.push(s.ns);
        if (last.recordedAt > summary.updatedAt) summary.updatedAt = last.recordedAt;
      }
    }
    return [...byThread.values()];
  }

  /** Every checkpoint of a thread namespace since its last deletion, oldest first, with its status: the audit view. */
  async history(threadId: string, options: { checkpointNs?: string } = {}): Promise<CheckpointRecord[]> {
    const id = threadIdOf(threadId, 'history');
    const ns = nsOf(options.checkpointNs ?? '', 'history');
    const index = await this.#load(streamIdOf(this.prefix, id, ns), { history: true });
    return index.allIdsAscending().map((cid) => {
      const cp = index.checkpoints.get(cid) as IndexedCheckpoint;
      return {
        checkpointId: cid,
        checkpointNs: ns,
        parentId: cp.parent,
        status: cp.status,
        version: cp.version,
        recordedAt: cp.recordedAt,
      };
    });
  }

  // -------------------------------------------------------------------------

  async #tuple(threadId: string, ns: string, index: StreamIndex, entry: IndexedCheckpoint): Promise<CheckpointTuple> {
    const checkpoint = (await this.#decode(loaded(entry.checkpoint))) as Checkpoint;
    const values: Record<string, unknown> = {};
    for (const [channel, version] of Object.entries(checkpoint.channel_versions ?? {})) {
      const stored = index.valueAt(channel, version, entry.id);
      if (stored) values[channel] = await this.#decode(stored);
    }
    checkpoint.channel_values = values;
    if (checkpoint.v < 4 && entry.parent !== null) await this.#migratePendingSends(checkpoint, index, entry.parent);
    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      index.writesOf(entry.id).map(async (w) => [w.task, w.channel, await this.#decode(loaded(w.value))] as CheckpointPendingWrite),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: entry.id } },
      checkpoint,
      metadata: (await this.#decode(loaded(entry.metadata))) as CheckpointMetadata,
      pendingWrites,
    };
    if (entry.parent !== null)
      tuple.parentConfig = { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: entry.parent } };
    return tuple;
  }

  /** Checkpoints before format 4 kept pending sends as TASKS writes of their parent. */
  async #migratePendingSends(checkpoint: Checkpoint, index: StreamIndex, parent: string): Promise<void> {
    const sends = await Promise.all(
      index
        .writesOf(parent)
        .filter((w) => w.channel === TASKS)
        .map((w) => this.#decode(loaded(w.value))),
    );
    checkpoint.channel_values[TASKS] = sends;
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  async #matches(metadata: LoadedValue, filter: Record<string, unknown>): Promise<boolean> {
    const value = ('text' in metadata ? JSON.parse(metadata.text) : await this.#decode(metadata)) as Record<string, unknown> | null;
    return Object.entries(filter).every(([k, v]) => value !== null && typeof value === 'object' && isDeepStrictEqual(value[k], v));
  }

  /** Captures `value` synchronously: plain JSON as our copy; otherwise the serde's work starts before the first await. */
  #encode(value: unknown): StoredValue | Promise<StoredValue> {
    const copy = this.#plainJson ? copyPlain(value) : undefined;
    return copy !== undefined ? { j: copy } : this.#serialize(value);
  }

  async #serialize(value: unknown): Promise<StoredValue> {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    if (type === 'json') return { j: JSON.parse(decoder.decode(bytes)) as Json };
    return { t: type, b: Buffer.from(bytes).toString('base64') };
  }

  async #decode(value: LoadedValue): Promise<unknown> {
    if ('text' in value) return this.#plainJson && !value.lc ? JSON.parse(value.text) : this.serde.loadsTyped('json', value.text);
    return this.serde.loadsTyped(value.t, new Uint8Array(Buffer.from(value.b, 'base64')));
  }

  #event(type: string, data: unknown): NewEvent {
    return this.#metadata ? { type, data, metadata: this.#metadata } : { type, data };
  }

  /** Streams of one thread (or of all threads), with their decoded names. */
  async #streams(threadId: string | undefined): Promise<{ streamId: string; threadId: string; ns: string }[]> {
    const prefix = threadId === undefined ? `${this.prefix}:` : threadPrefix(this.prefix, threadId);
    const out: { streamId: string; threadId: string; ns: string }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listStreams({ prefix, after, limit: 1000 });
      for (const info of page) {
        const parsed = parseStreamId(this.prefix, info.streamId);
        if (parsed) out.push({ streamId: info.streamId, ...parsed });
      }
      if (page.length < 1000) return out;
      after = page[page.length - 1]?.streamId;
    }
  }

  /**
   * The stream's index, caught up with the log. A cached one is caught up
   * incrementally; otherwise one is built: from the newest snapshot when only
   * the latest checkpoint is asked for (a saver opening a thread), else from
   * the whole stream.
   */
  async #load(streamId: string, need: Need = {}): Promise<StreamIndex> {
    const cached = this.#touch(streamId);
    if (cached) {
      await this.#catchUp(streamId, cached);
      if (answers(cached, need)) return cached;
    }
    return this.#build(streamId, need.history !== true && need.checkpoint === undefined);
  }

  /** For writers: the cached index as it stands (expectedVersion tells them of others' appends), or a new one. */
  async #cached(streamId: string): Promise<StreamIndex> {
    return this.#touch(streamId) ?? this.#build(streamId, true);
  }

  #touch(streamId: string): StreamIndex | undefined {
    const index = this.#indexes.get(streamId);
    if (index) {
      this.#indexes.delete(streamId);
      this.#indexes.set(streamId, index);
    }
    return index;
  }

  /**
   * A new index, swapped in whole when ready, so a caller still holding the
   * old one never sees it change under it. Concurrent callers share a build.
   */
  #build(streamId: string, fromSnapshot: boolean): Promise<StreamIndex> {
    const key = `${fromSnapshot ? 'latest' : 'history'}\u0000${streamId}`;
    let building = this.#building.get(key);
    if (!building) {
      building = (async () => {
        const index = new StreamIndex();
        const snapshot = fromSnapshot ? await this.store.loadSnapshot<IndexSnapshot>(streamId, INDEX_SNAPSHOT_FORMAT) : undefined;
        if (snapshot) index.restore(snapshot.state, snapshot.version);
        await this.#catchUp(streamId, index);
        // What came after the snapshot (a rollback, a fork from further back) needs the history after all.
        if (!answers(index, {})) {
          index.reset();
          await this.#catchUp(streamId, index);
        }
        this.#indexes.delete(streamId);
        if (this.#indexes.size >= this.#cacheSize) {
          const oldest = this.#indexes.keys().next().value as string;
          this.#indexes.delete(oldest);
          this.#submitted.delete(oldest);
        }
        this.#indexes.set(streamId, index);
        return index;
      })().finally(() => this.#building.delete(key));
      this.#building.set(key, building);
    }
    return building;
  }

  /** What this process last put per channel of the stream, to store the next value as an appended tail. */
  #submissions(streamId: string): Map<string, Submitted> {
    let submitted = this.#submitted.get(streamId);
    if (!submitted) {
      submitted = new Map();
      this.#submitted.set(streamId, submitted);
    }
    return submitted;
  }

  /** A snapshot is a cache beside the log: failing to write one loses nothing, so it never fails the put behind it. */
  async #snapshot(streamId: string, index: StreamIndex): Promise<void> {
    index.snapshotAt = index.version;
    try {
      const snapshot = index.toSnapshot();
      if (snapshot) await this.store.saveSnapshot(streamId, index.version, snapshot, INDEX_SNAPSHOT_FORMAT, { replaceOlder: true });
    } catch {
      // The next one is due 64 events later; until then a saver opening the thread reads a little more.
    }
  }

  /** Applies what the log holds beyond the index; returns the events that were new to it. */
  async #catchUp(streamId: string, index: StreamIndex): Promise<EventEnvelope[]> {
    const applied: EventEnvelope[] = [];
    for (;;) {
      const events = await this.store.read(streamId, { from: index.version + 1, limit: READ_PAGE });
      applied.push(...index.apply(events));
      if (events.length < READ_PAGE) break;
    }
    return applied;
  }

  /** Folds our own appended events in, reading whatever others appended in between. */
  async #absorb(streamId: string, index: StreamIndex, events: EventEnvelope[]): Promise<void> {
    if ((events[0]?.version ?? 0) === index.version + 1) index.apply(events);
    else await this.#catchUp(streamId, index);
  }

  /**
   * Group commit per stream: calls that arrive while an append is in flight
   * (parallel tasks' writes, a put overlapping them under LangGraph's default
   * async durability) go out together in the next append, one commit. A
   * batch holds at most one put, because a put's blobs are encoded against
   * the index as it stands before it.
   */
  #submit(streamId: string, op: Omit<Pending, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const queue = this.#queues.get(streamId);
      if (queue) {
        queue.push({ ...op, resolve, reject });
        return;
      }
      this.#queues.set(streamId, [{ ...op, resolve, reject }]);
      void this.#exclusive(streamId, () => this.#drain(streamId));
    });
  }

  async #drain(streamId: string): Promise<void> {
    const queue = this.#queues.get(streamId) as Pending[];
    try {
      let index = this.#touch(streamId) ?? (await this.#build(streamId, true));
      while (queue.length > 0) {
        const second = queue.findIndex((op, i) => op.put && queue.slice(0, i).some((o) => o.put));
        const batch = queue.splice(0, second === -1 ? queue.length : second);
        for (const op of batch) {
          if (op.requires !== undefined && !answers(index, { checkpoint: op.requires }))
            index = await this.#load(streamId, { checkpoint: op.requires });
        }
        await this.#commit(streamId, index, batch);
      }
    } catch (error) {
      for (const op of queue.splice(0)) op.reject(error);
    } finally {
      this.#queues.delete(streamId);
    }
  }

  async #commit(streamId: string, index: StreamIndex, batch: Pending[]): Promise<void> {
    for (let attempt = 1; batch.length > 0; attempt++) {
      const events: NewEvent[] = [];
      const sent: Pending[] = [];
      for (const op of batch) {
        const event = op.build(index);
        if (event) {
          events.push(event);
          sent.push(op);
        } else op.resolve();
      }
      if (events.length === 0) return;
      const withPut = sent.some((op) => op.put);
      try {
        // Writes merge (first regular write wins, special ones replace, in log order), so alone they need no version.
        const result = await this.store.append(streamId, events, { expectedVersion: withPut ? index.version : 'any' });
        await this.#absorb(streamId, index, result.events);
        if (index.version - index.snapshotAt >= SNAPSHOT_EVERY) await this.#snapshot(streamId, index);
        for (const op of sent) op.resolve();
        return;
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) {
          for (const op of sent) op.reject(error);
          return;
        }
        const meanwhile = await this.#catchUp(streamId, index);
        batch = sent.filter((op) => {
          const conflict = op.conflict?.(meanwhile);
          if (conflict) op.reject(conflict);
          return !conflict;
        });
      }
    }
  }

  async #exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    }
  }

  async #prunePlan(
    index: StreamIndex,
    keepLast: number | undefined,
    newerThan: Date | undefined,
  ): Promise<{ data: PrunedData; kept: number }> {
    const live = [...index.liveIdsDescending()];
    const cutoff = newerThan?.toISOString();
    const keep = new Set<string>(live.slice(0, Math.max(1, keepLast ?? 0)));
    for (const id of live) {
      if (keep.has(id)) continue;
      const cp = index.checkpoints.get(id) as IndexedCheckpoint;
      if (cutoff !== undefined && ((await this.#timestampOf(cp)) ?? '') >= cutoff) keep.add(id);
      else if (index.writesOf(id).some((w) => w.channel === INTERRUPT) && !index.hasChild(id)) keep.add(id);
    }
    const pruned = live.filter((id) => !keep.has(id));
    const gone = new Set(pruned);
    const relinked: Record<string, string | null> = {};
    for (const id of keep) {
      const cp = index.checkpoints.get(id) as IndexedCheckpoint;
      let parent = cp.parent;
      while (parent !== null && gone.has(parent)) parent = (index.checkpoints.get(parent) as IndexedCheckpoint).parent;
      if (parent !== cp.parent) relinked[id] = parent;
    }
    return {
      data: { pruned, relinked, keepLast: keepLast ?? null, newerThan: cutoff ?? null },
      kept: keep.size,
    };
  }

  async #timestampOf(cp: IndexedCheckpoint): Promise<string | undefined> {
    const checkpoint = loaded(cp.checkpoint);
    const value = ('text' in checkpoint ? JSON.parse(checkpoint.text) : await this.#decode(checkpoint)) as { ts?: unknown } | null;
    const ts = value?.ts;
    return typeof ts === 'string' && !Number.isNaN(Date.parse(ts)) ? new Date(ts).toISOString() : cp.recordedAt;
  }
}

const decoder = new TextDecoder();

/** Why appending a child of `parent` after `meanwhile` would fork the thread, or undefined when it is still sound. */
function forkIn(meanwhile: EventEnvelope[], id: string, parent: string | null): string | undefined {
  for (const e of meanwhile) {
    if (e.type === LangGraphEvents.ThreadDeleted) return 'the thread was deleted meanwhile';
    if (e.type === LangGraphEvents.Checkpoint) {
      const data = e.data as CheckpointData;
      if (data.parent === parent && data.id !== id) {
        return `another writer already continued from ${parent === null ? 'the start' : `checkpoint ${parent}`} (as checkpoint ${data.id}); writing ${id} too would fork the chain`;
      }
    }
    if (parent !== null && e.type === LangGraphEvents.RolledBack && (e.data as RolledBackData).rolledBack.includes(parent)) {
      return `checkpoint ${parent} was rolled back meanwhile`;
    }
    if (parent !== null && e.type === LangGraphEvents.Pruned && (e.data as PrunedData).pruned.includes(parent)) {
      return `checkpoint ${parent} was pruned meanwhile`;
    }
  }
  return undefined;
}

function readConfig(config: RunnableConfig, op: string): { threadId: string; ns: string; checkpointId: string | undefined } {
  const c = config?.configurable;
  if (c === null || typeof c !== 'object') {
    throw new ValidationError(`${op}: config.configurable is missing`, [], 'pass { configurable: { thread_id } }');
  }
  const checkpointId = c.checkpoint_id || undefined;
  if (checkpointId !== undefined && typeof checkpointId !== 'string') throw new ValidationError(`${op}: checkpoint_id must be a string`);
  return { threadId: threadIdOf(c.thread_id, op), ns: nsOf(c.checkpoint_ns ?? '', op), checkpointId };
}

function threadIdOf(value: unknown, op: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError(`${op}: thread_id must be a non-empty string`, [], 'pass { configurable: { thread_id: "…" } }');
  }
  return value;
}

function nsOf(value: unknown, op: string): string {
  if (typeof value !== 'string') throw new ValidationError(`${op}: checkpoint_ns must be a string`);
  return value;
}

function checkCheckpoint(checkpoint: Checkpoint, newVersions: ChannelVersions): void {
  const issues: string[] = [];
  if (checkpoint === null || typeof checkpoint !== 'object') issues.push('checkpoint must be an object');
  else {
    if (typeof checkpoint.id !== 'string' || checkpoint.id.length === 0) issues.push('checkpoint.id must be a non-empty string');
    if (checkpoint.channel_values !== undefined && (checkpoint.channel_values === null || typeof checkpoint.channel_values !== 'object')) {
      issues.push('checkpoint.channel_values must be an object');
    }
  }
  if (newVersions === null || typeof newVersions !== 'object') issues.push('newVersions must be an object of channel -> version');
  else {
    for (const [channel, version] of Object.entries(newVersions)) {
      if (!(typeof version === 'string' || (typeof version === 'number' && Number.isFinite(version)))) {
        issues.push(`newVersions.${channel} must be a number or a string`);
      }
    }
  }
  if (issues.length) throw new ValidationError('put: invalid checkpoint', issues);
}
