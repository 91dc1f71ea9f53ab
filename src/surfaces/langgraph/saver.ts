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
  maxChannelVersion,
  type PendingWrite,
  type SerializerProtocol,
  TASKS,
  WRITES_IDX_MAP,
} from '@langchain/langgraph-checkpoint';
import type { EventEnvelope, EventMetadata, NewEvent } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import type { EventStore } from '../../store/types.js';
import { type PlannedValue, planPlain, planText, type Submitted } from './channel-values.js';
import { decoder, settled, ValueCodec } from './codec.js';
import { checkCheckpoint, nsOf, readConfig, threadIdOf } from './config.js';
import {
  asLangGraphEvent,
  CheckpointConflictError,
  type CheckpointData,
  LangGraphEvents,
  type StoredBlob,
  type StoredValue,
  type StoredWrite,
  streamIdOf,
  type ThreadDeletedData,
  type Version,
  type WritesData,
} from './events.js';
import {
  type CheckpointRecord,
  listThreads,
  type PruneOptions,
  type PruneResult,
  pruneThread,
  type RollbackResult,
  rollbackThread,
  type SaverParts,
  type ThreadSummary,
  threadHistory,
} from './extras.js';
import { StreamCache } from './stream-cache.js';
import { type IndexedCheckpoint, type LoadedValue, loaded, type StreamIndex } from './thread-index.js';
import { WriteQueue } from './write-queue.js';

export type { CheckpointRecord, PruneOptions, PruneResult, RollbackResult, ThreadSummary };

// The saver protocol (BaseCheckpointSaver: getTuple, list, put, putWrites,
// deleteThread) over the log. Its parts: the per-stream cache of indexes
// (stream-cache.ts), the write queue that groups a stream's appends
// (write-queue.ts), the codec for values (codec.ts), the checks of what
// LangGraph passes (config.ts), and what the official savers lack (extras.ts).

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

/** A channel value of a put: empty (no plan), planned, or still being serialised by the serde. */
interface Planned {
  channel: string;
  version: Version;
  plan?: PlannedValue;
  typed?: StoredValue;
  last?: Submitted;
  serialized?: Promise<[string, Uint8Array]>;
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
  readonly #metadata: EventMetadata | undefined;
  readonly #codec: ValueCodec;
  readonly #cache: StreamCache;
  readonly #queue: WriteQueue;
  /** What the extras use of this saver. */
  readonly #parts: SaverParts;

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
    this.#metadata = options.actor !== undefined ? { actor: options.actor } : undefined;
    this.#codec = new ValueCodec(this.serde);
    this.#cache = new StreamCache(store, prefix, cacheSize);
    this.#queue = new WriteQueue(store, this.#cache);
    this.#parts = {
      store,
      prefix,
      cache: this.#cache,
      queue: this.#queue,
      codec: this.#codec,
      event: (type, data) => this.#event(type, data),
    };
  }

  // -------------------------------------------------------------------------
  // BaseCheckpointSaver
  // -------------------------------------------------------------------------

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    // No thread names no checkpoint (the suite asks for undefined, not an error).
    if (config?.configurable?.thread_id === undefined) return undefined;
    const { threadId, ns, checkpointId } = readConfig(config, 'getTuple');
    const index = await this.#cache.load(streamIdOf(this.prefix, threadId, ns), { checkpoint: checkpointId });
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
        : (await this.#cache.streams(threadId)).filter((s) => ns === undefined || s.ns === ns);

    const candidates: { id: string; threadId: string; ns: string; index: StreamIndex; entry: IndexedCheckpoint }[] = [];
    for (const s of streams) {
      const index = await this.#cache.load(s.streamId, { history: true });
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
    const encoding = [this.#codec.encode(rest), this.#codec.encode(metadata ?? {})];
    const submitted = this.#cache.submissions(streamId);
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
      const fromLog = this.#codec.plainJson && Array.isArray(value);
      const last = submitted.get(channel) ?? (fromLog ? this.#cache.peek(streamId)?.storedItems(channel) : undefined);
      const plan = this.#codec.plainJson ? planPlain(value, version, checkpoint.id, last) : undefined;
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

    await this.#queue.submit(streamId, {
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
    const values = await settled(writes.map(([, value]) => this.#codec.encode(value)));
    const encoded: StoredWrite[] = writes.map(([channel], i) => ({
      idx: WRITES_IDX_MAP[channel] ?? i,
      channel,
      value: values[i] as StoredValue,
    }));
    const streamId = streamIdOf(this.prefix, threadId, ns);
    await this.#queue.submit(streamId, {
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
    const streams = await this.#cache.streams(id);
    if (streams.length === 0) return;
    await this.store.appendMany(
      streams.map((s) => ({
        streamId: s.streamId,
        events: [this.#event(LangGraphEvents.ThreadDeleted, { threadId: id, ns: s.ns } satisfies ThreadDeletedData)],
      })),
    );
    for (const s of streams) {
      this.#cache.forgetSubmissions(s.streamId);
      const index = this.#cache.peek(s.streamId);
      if (index) await this.#cache.catchUp(s.streamId, index);
    }
  }

  // -------------------------------------------------------------------------
  // What the official savers lack (extras.ts)
  // -------------------------------------------------------------------------

  /**
   * Retention. Keeps, per namespace, the newest `keepLast` checkpoints, those
   * newer than `newerThan`, the latest one and any with a pending interrupt;
   * the others are hidden by one recorded event, and each kept checkpoint is
   * re-linked to its nearest kept ancestor so parent chains stay whole.
   */
  prune(threadId: string, options: PruneOptions): Promise<PruneResult> {
    return pruneThread(this.#parts, threadId, options);
  }

  /**
   * Makes `checkpointId` the thread's latest checkpoint again: every live
   * checkpoint recorded after it, in every namespace of the thread, is marked
   * rolled back in one atomic multi-stream append. They stay in the log and
   * can still be read by id; list() and getTuple() without an id skip them.
   * The target's pending writes are hidden too, so the undone steps run again.
   */
  rollback(threadId: string, checkpointId: string, reason: string, options: { checkpointNs?: string } = {}): Promise<RollbackResult> {
    return rollbackThread(this.#parts, threadId, checkpointId, reason, options);
  }

  /** Threads that have a stream not ended by deleteThread. */
  listThreads(): Promise<ThreadSummary[]> {
    return listThreads(this.#parts);
  }

  /** Every checkpoint of a thread namespace since its last deletion, oldest first, with its status: the audit view. */
  history(threadId: string, options: { checkpointNs?: string } = {}): Promise<CheckpointRecord[]> {
    return threadHistory(this.#parts, threadId, options);
  }

  // -------------------------------------------------------------------------

  async #tuple(threadId: string, ns: string, index: StreamIndex, entry: IndexedCheckpoint): Promise<CheckpointTuple> {
    const checkpoint = (await this.#codec.decode(loaded(entry.checkpoint))) as Checkpoint;
    const values: Record<string, unknown> = {};
    for (const [channel, version] of Object.entries(checkpoint.channel_versions ?? {})) {
      const stored = index.valueAt(channel, version, entry.id);
      if (stored) values[channel] = await this.#codec.decode(stored);
    }
    checkpoint.channel_values = values;
    if (checkpoint.v < 4 && entry.parent !== null) await this.#migratePendingSends(checkpoint, index, entry.parent);
    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      index.writesOf(entry.id).map(async (w) => [w.task, w.channel, await this.#codec.decode(loaded(w.value))] as CheckpointPendingWrite),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: entry.id } },
      checkpoint,
      metadata: (await this.#codec.decode(loaded(entry.metadata))) as CheckpointMetadata,
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
        .map((w) => this.#codec.decode(loaded(w.value))),
    );
    checkpoint.channel_values[TASKS] = sends;
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  async #matches(metadata: LoadedValue, filter: Record<string, unknown>): Promise<boolean> {
    const value = await this.#codec.inspect(metadata);
    return Object.entries(filter).every(([k, v]) => isRecord(value) && isDeepStrictEqual(value[k], v));
  }

  #event(type: string, data: unknown): NewEvent {
    return this.#metadata ? { type, data, metadata: this.#metadata } : { type, data };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Why appending a child of `parent` after `meanwhile` would fork the thread, or undefined when it is still sound. */
function forkIn(meanwhile: EventEnvelope[], id: string, parent: string | null): string | undefined {
  for (const event of meanwhile) {
    const e = asLangGraphEvent(event);
    if (e?.type === LangGraphEvents.ThreadDeleted) return 'the thread was deleted meanwhile';
    if (e?.type === LangGraphEvents.Checkpoint && e.data.parent === parent && e.data.id !== id) {
      return `another writer already continued from ${parent === null ? 'the start' : `checkpoint ${parent}`} (as checkpoint ${e.data.id}); writing ${id} too would fork the chain`;
    }
    if (parent !== null && e?.type === LangGraphEvents.RolledBack && e.data.rolledBack.includes(parent)) {
      return `checkpoint ${parent} was rolled back meanwhile`;
    }
    if (parent !== null && e?.type === LangGraphEvents.Pruned && e.data.pruned.includes(parent)) {
      return `checkpoint ${parent} was pruned meanwhile`;
    }
  }
  return undefined;
}
