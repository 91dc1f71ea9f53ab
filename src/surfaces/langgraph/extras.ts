import { INTERRUPT } from '@langchain/langgraph-checkpoint';
import type { NewEvent } from '../../events/envelope.js';
import { ConcurrencyError, NotFoundError, ValidationError } from '../../events/errors.js';
import type { EventStore, StreamAppend } from '../../store/types.js';
import type { ValueCodec } from './codec.js';
import { nsOf, threadIdOf } from './config.js';
import { LangGraphEvents, type PrunedData, type RolledBackData, streamIdOf } from './events.js';
import type { StreamCache } from './stream-cache.js';
import { type CheckpointStatus, type IndexedCheckpoint, loaded, type StreamIndex } from './thread-index.js';
import { MAX_ATTEMPTS, type WriteQueue } from './write-queue.js';

// What the official savers lack: retention (prune), rollback of a thread to
// one of its checkpoints, a list of the threads, and a thread's audit view.

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

/** What the saver lends its extras: its store and prefix, its per-stream cache and write queue, its codec. */
export interface SaverParts {
  store: EventStore;
  prefix: string;
  cache: StreamCache;
  queue: WriteQueue;
  codec: ValueCodec;
  /** An event as the saver appends it (with its actor, when it has one). */
  event(type: string, data: unknown): NewEvent;
}

/**
 * Retention. Keeps, per namespace, the newest `keepLast` checkpoints, those
 * newer than `newerThan`, the latest one and any with a pending interrupt;
 * the others are hidden by one recorded event, and each kept checkpoint is
 * re-linked to its nearest kept ancestor so parent chains stay whole.
 */
export async function pruneThread(saver: SaverParts, threadId: string, options: PruneOptions): Promise<PruneResult> {
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

  const streams = (await saver.cache.streams(id)).filter((s) => checkpointNs === undefined || s.ns === checkpointNs);
  const result: PruneResult = { pruned: [], kept: 0 };
  for (const s of streams) {
    await saver.queue.exclusive(s.streamId, async () => {
      const index = await saver.cache.load(s.streamId, { history: true });
      for (let attempt = 1; ; attempt++) {
        const plan = await prunePlan(saver, index, keepLast, newerThan);
        if (plan.data.pruned.length === 0) {
          result.kept += plan.kept;
          return;
        }
        try {
          const appended = await saver.store.append(s.streamId, [saver.event(LangGraphEvents.Pruned, plan.data)], {
            expectedVersion: index.version,
          });
          await saver.cache.absorb(s.streamId, index, appended.events);
          result.pruned.push(...plan.data.pruned);
          result.kept += plan.kept;
          return;
        } catch (error) {
          if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw error;
          await saver.cache.catchUp(s.streamId, index);
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
export async function rollbackThread(
  saver: SaverParts,
  threadId: string,
  checkpointId: string,
  reason: string,
  options: { checkpointNs?: string } = {},
): Promise<RollbackResult> {
  const id = threadIdOf(threadId, 'rollback');
  const issues: string[] = [];
  if (typeof checkpointId !== 'string' || checkpointId.length === 0) issues.push('checkpointId must be a non-empty string');
  if (typeof reason !== 'string' || reason.trim().length === 0)
    issues.push('reason must be a non-empty string (it is recorded for the audit)');
  const ns = options.checkpointNs ?? '';
  if (typeof ns !== 'string') issues.push('checkpointNs must be a string');
  if (issues.length) throw new ValidationError('cannot roll back', issues);

  const targetStream = streamIdOf(saver.prefix, id, ns);
  for (let attempt = 1; ; attempt++) {
    const streams = await saver.cache.streams(id);
    const target = (await saver.cache.load(targetStream, { history: true })).checkpoints.get(checkpointId);
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
      const index = await saver.cache.load(s.streamId, { history: true });
      const after = [...index.liveIdsDescending()].filter((cid) => cid > checkpointId);
      if (after.length === 0 && s.streamId !== targetStream) continue;
      const data: RolledBackData = { target: checkpointId, reason, rolledBack: after, previousHead: index.latest()?.id ?? null };
      appends.push({ streamId: s.streamId, events: [saver.event(LangGraphEvents.RolledBack, data)], expectedVersion: index.version });
      rolledBack.push(...after);
    }
    try {
      const results = await saver.store.appendMany(appends);
      for (const r of results) await saver.cache.absorb(r.streamId, await saver.cache.cached(r.streamId), r.events);
      return { target: checkpointId, rolledBack };
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
}

/** Threads that have a stream not ended by deleteThread. */
export async function listThreads(saver: SaverParts): Promise<ThreadSummary[]> {
  const byThread = new Map<string, ThreadSummary>();
  for (const s of await saver.cache.streams(undefined)) {
    const [last] = await saver.store.read(s.streamId, { direction: 'backward', limit: 1 });
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
export async function threadHistory(
  saver: SaverParts,
  threadId: string,
  options: { checkpointNs?: string } = {},
): Promise<CheckpointRecord[]> {
  const id = threadIdOf(threadId, 'history');
  const ns = nsOf(options.checkpointNs ?? '', 'history');
  const index = await saver.cache.load(streamIdOf(saver.prefix, id, ns), { history: true });
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

/** Which live checkpoints a prune hides, and how the kept ones are re-linked. */
async function prunePlan(
  saver: SaverParts,
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
    if (cutoff !== undefined && ((await timestampOf(saver, cp)) ?? '') >= cutoff) keep.add(id);
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

/** The checkpoint's own `ts`, else when its event was recorded. */
async function timestampOf(saver: SaverParts, cp: IndexedCheckpoint): Promise<string | undefined> {
  const value = await saver.codec.inspect(loaded(cp.checkpoint));
  const ts = typeof value === 'object' && value !== null && 'ts' in value ? value.ts : undefined;
  return typeof ts === 'string' && !Number.isNaN(Date.parse(ts)) ? new Date(ts).toISOString() : cp.recordedAt;
}
