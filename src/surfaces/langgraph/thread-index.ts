import { compareWritesSortKeys, writesSortKey } from '@langchain/langgraph-checkpoint';
import type { EventEnvelope, Json } from '../../events/envelope.js';
import type { Submitted } from './channel-values.js';
import {
  asLangGraphEvent,
  type CheckpointData,
  LangGraphEvents,
  type StoredBlob,
  type StoredValue,
  type StoredWrite,
  type Version,
  type WritesData,
} from './events.js';

export type CheckpointStatus = 'live' | 'rolledBack' | 'pruned';

/**
 * A stored value as the index keeps it: serde JSON as text (what the serde
 * loads, and half the memory of the parsed form), `lc` telling whether it
 * holds LangChain-serialised objects; anything else as stored (base64).
 */
export type LoadedValue = { text: string; lc: boolean } | { t: string; b: string };

/** A stored value, turned into a LoadedValue on first use: catching up stays cheap, only what is read pays. */
export interface LazyValue {
  stored?: StoredValue;
  loaded?: LoadedValue;
}

export function loaded(value: LazyValue): LoadedValue {
  if (!value.loaded) {
    const stored = value.stored as StoredValue;
    if ('j' in stored) {
      const text = JSON.stringify(stored.j);
      value.loaded = { text, lc: text.includes('"lc"') };
    } else {
      value.loaded = stored;
    }
    value.stored = undefined;
  }
  return value.loaded;
}

export interface IndexedCheckpoint {
  id: string;
  /** Effective parent: re-linked by retention when the stored one was pruned. */
  parent: string | null;
  /** The parent it was put with, which is where its unchanged channel values come from. */
  storedParent: string | null;
  checkpoint: LazyValue;
  metadata: LazyValue;
  /** Stream version of the event that recorded it. */
  version: number;
  recordedAt: string;
  status: CheckpointStatus;
}

export interface IndexedWrite {
  task: string;
  idx: number;
  channel: string;
  path: string;
  value: LazyValue;
}

/** A full value, the items a tail appends to the value at `base`, or no value. */
type BlobValue = { full: LazyValue } | { base: string; tail: LazyValue } | { empty: true };

interface BlobEntry {
  value: BlobValue;
  /** The checkpoint whose event stored it. */
  writer: string;
  /** Items in the last full value this one is built on (its own when full). */
  fullSize: number;
  /** Items appended since that full value. */
  deltaSize: number;
}

/** Names the IndexSnapshot format in the store; a new format ignores the older snapshots. */
export const INDEX_SNAPSHOT_FORMAT = 'langgraph-index/1';

/**
 * The part of an index that answers for the stream's latest checkpoint: the
 * checkpoint, its pending writes, and the channel values it sees (plus each
 * channel's newest one), each joined whole. A saver opening the thread starts
 * from it and reads only the events after it, not the whole stream.
 */
export interface IndexSnapshot {
  checkpoint: Omit<IndexedCheckpoint, 'checkpoint' | 'metadata' | 'status'> & { checkpoint: LoadedValue; metadata: LoadedValue };
  blobs: {
    channel: string;
    key: string;
    writer: string;
    value: LoadedValue | null;
    fullSize: number;
    deltaSize: number;
    newest: boolean;
  }[];
  writes: { task: string; idx: number; channel: string; path: string; value: LoadedValue }[];
}

/**
 * What one stream (thread + namespace) holds, folded from its events. Catches
 * up incrementally: `apply` ignores versions it already has, so two concurrent
 * catch-ups of the same index cannot double-apply an event.
 */
export class StreamIndex {
  version = 0;
  /** Started from a snapshot: knows the latest checkpoint as of it and what came after, not the history before. */
  partial = false;
  /** A partial index met an event it cannot fold alone (a rollback, a prune, a tail on a value it lacks). */
  needsHistory = false;
  /** Version of the newest snapshot of this stream this process knows of. */
  snapshotAt = 0;
  readonly checkpoints = new Map<string, IndexedCheckpoint>();
  /** Checkpoint ids, ascending (uuid6 ids sort by time). */
  #sorted: string[] = [];
  /** channel -> version -> the blobs stored at it: one, or one per branch that reused the version. */
  readonly #blobs = new Map<string, Map<string, BlobEntry[]>>();
  readonly #writes = new Map<string, Map<string, IndexedWrite>>();
  /** Each channel's most recently stored version. */
  readonly #newest = new Map<string, { key: string; writer: string }>();

  apply(events: EventEnvelope[]): EventEnvelope[] {
    const applied: EventEnvelope[] = [];
    for (const event of events) {
      if (event.version !== this.version + 1) continue;
      this.version = event.version;
      applied.push(event);
      const e = asLangGraphEvent(event);
      switch (e?.type) {
        case LangGraphEvents.Checkpoint:
          this.#putCheckpoint(e.data, e);
          break;
        case LangGraphEvents.Writes:
          this.#putWrites(e.data);
          break;
        case LangGraphEvents.ThreadDeleted:
          this.checkpoints.clear();
          this.#sorted = [];
          this.#blobs.clear();
          this.#writes.clear();
          this.#newest.clear();
          break;
        case LangGraphEvents.Pruned: {
          this.needsHistory ||= this.partial;
          const data = e.data;
          for (const id of data.pruned) {
            const cp = this.checkpoints.get(id);
            if (cp) cp.status = 'pruned';
          }
          for (const [child, parent] of Object.entries(data.relinked)) {
            const cp = this.checkpoints.get(child);
            if (cp) cp.parent = parent;
          }
          break;
        }
        case LangGraphEvents.RolledBack: {
          this.needsHistory ||= this.partial;
          const data = e.data;
          for (const id of data.rolledBack) {
            const cp = this.checkpoints.get(id);
            if (cp && cp.status === 'live') cp.status = 'rolledBack';
          }
          // The target's pending writes are results of the steps being undone: they go too, so those steps run again.
          this.#writes.delete(data.target);
          break;
        }
      }
    }
    return applied;
  }

  /** Forgets everything, to be caught up from the start of the stream. */
  reset(): void {
    this.version = 0;
    this.partial = this.needsHistory = false;
    this.checkpoints.clear();
    this.#sorted = [];
    this.#blobs.clear();
    this.#writes.clear();
    this.#newest.clear();
  }

  /** The snapshot of this index as it stands; undefined when it has no latest checkpoint to describe. */
  toSnapshot(): IndexSnapshot | undefined {
    const latest = this.latest();
    if (!latest || this.needsHistory) return undefined;
    const checkpoint = loaded(latest.checkpoint);
    if (!('text' in checkpoint)) return undefined;
    const { v, channel_versions: versions = {} } = JSON.parse(checkpoint.text) as {
      v?: number;
      channel_versions?: Record<string, Version>;
    };
    // Before format 4 a checkpoint's pending sends are its parent's writes, which a snapshot does not hold.
    if (v === undefined || v < 4) return undefined;
    const { checkpoint: _, metadata, status: __, ...rest } = latest;
    const snapshot: IndexSnapshot = {
      checkpoint: { ...rest, checkpoint, metadata: loaded(metadata) },
      blobs: [],
      writes: this.writesOf(latest.id).map((w) => ({ ...w, value: loaded(w.value) })),
    };
    const add = (channel: string, key: string, from: string, newest: boolean) => {
      const entry = this.#resolve(channel, key, from);
      if (!entry || snapshot.blobs.some((b) => b.channel === channel && b.key === key && b.writer === entry.writer)) return;
      const value = 'empty' in entry.value ? null : this.valueAt(channel, parseVersionKey(key), from);
      if (value === undefined) return;
      snapshot.blobs.push({ channel, key, writer: entry.writer, value, fullSize: entry.fullSize, deltaSize: entry.deltaSize, newest });
    };
    for (const [channel, version] of Object.entries(versions)) add(channel, versionKey(version), latest.id, false);
    for (const [channel, newest] of this.#newest) add(channel, newest.key, newest.writer, true);
    return snapshot;
  }

  /** Starts this (empty) index from a snapshot of the stream at `version`. */
  restore(snapshot: IndexSnapshot, version: number): void {
    this.reset();
    this.version = this.snapshotAt = version;
    this.partial = true;
    const { checkpoint, metadata, ...rest } = snapshot.checkpoint;
    this.checkpoints.set(rest.id, { ...rest, checkpoint: { loaded: checkpoint }, metadata: { loaded: metadata }, status: 'live' });
    this.#sorted.push(rest.id);
    for (const b of snapshot.blobs) {
      const value: BlobValue = b.value === null ? { empty: true } : { full: { loaded: b.value } };
      this.#storeBlob(b.channel, b.key, { value, writer: b.writer, fullSize: b.fullSize, deltaSize: b.deltaSize });
      if (b.newest) this.#newest.set(b.channel, { key: b.key, writer: b.writer });
    }
    const writes = new Map<string, IndexedWrite>();
    for (const w of snapshot.writes) writes.set(writeKey(w.task, w.idx), { ...w, value: { loaded: w.value } });
    if (writes.size > 0) this.#writes.set(rest.id, writes);
  }

  /** Live checkpoint ids, newest first. */
  *liveIdsDescending(): Generator<string> {
    for (let i = this.#sorted.length - 1; i >= 0; i--) {
      const id = this.#sorted[i] as string;
      if (this.checkpoints.get(id)?.status === 'live') yield id;
    }
  }

  allIdsAscending(): readonly string[] {
    return this.#sorted;
  }

  latest(): IndexedCheckpoint | undefined {
    for (const id of this.liveIdsDescending()) return this.checkpoints.get(id);
    return undefined;
  }

  /** Pending writes of a checkpoint in writesSortKey order (path, task, idx). */
  writesOf(checkpointId: string): IndexedWrite[] {
    const writes = this.#writes.get(checkpointId);
    if (!writes) return [];
    return [...writes.values()].sort(compareWrites);
  }

  hasWrite(checkpointId: string, task: string, idx: number): boolean {
    return this.#writes.get(checkpointId)?.has(writeKey(task, idx)) ?? false;
  }

  hasChild(checkpointId: string): boolean {
    for (const cp of this.checkpoints.values()) if (cp.status === 'live' && cp.parent === checkpointId) return true;
    return false;
  }

  /**
   * A channel's value at a version, as checkpoint `from` sees it, rebuilt
   * from its delta chain by joining texts (no parsing); undefined when absent
   * or empty.
   */
  valueAt(channel: string, version: Version, from: string): LoadedValue | undefined {
    let entry = this.#resolve(channel, versionKey(version), from);
    if (!entry || 'empty' in entry.value) return undefined;
    if ('full' in entry.value) return loaded(entry.value.full);
    const tails: string[] = [];
    let lc = false;
    while (entry && 'base' in entry.value) {
      const tail = loaded(entry.value.tail) as { text: string; lc: boolean };
      tails.push(tail.text.slice(1, -1));
      lc ||= tail.lc;
      entry = this.#resolve(channel, entry.value.base, entry.writer);
    }
    const full = entry && 'full' in entry.value ? loaded(entry.value.full) : undefined;
    if (!full || !('text' in full)) return undefined;
    let text = full.text.slice(0, -1);
    for (let i = tails.length - 1; i >= 0; i--) text += `,${tails[i]}`;
    return { text: `${text}]`, lc: lc || full.lc };
  }

  /**
   * Whether a value can be stored as items appended to the one `writer`
   * stored at `base`: only while the items appended since the last full copy
   * stay no more than that copy's, so storage stays linear in the list's
   * length and a rebuild reads at most twice the value.
   */
  canExtend(channel: string, base: Version, writer: string, items: number): boolean {
    const entry = this.#blobs
      .get(channel)
      ?.get(versionKey(base))
      ?.find((e) => e.writer === writer);
    return entry !== undefined && !('empty' in entry.value) && entry.deltaSize + items <= entry.fullSize;
  }

  /**
   * The channel's newest stored value as parsed items, for a saver that has
   * put nothing on the thread yet: its next put can then be a tail too.
   */
  storedItems(channel: string): Submitted | undefined {
    const newest = this.#newest.get(channel);
    if (!newest) return undefined;
    const value = this.valueAt(channel, parseVersionKey(newest.key), newest.writer);
    if (!value || !('text' in value) || value.text.charCodeAt(0) !== 91 /* [ */) return undefined;
    return { version: parseVersionKey(newest.key), writer: newest.writer, items: JSON.parse(value.text) as Json[] };
  }

  /**
   * The blob of (channel, version) that checkpoint `from` sees. Versions are
   * unique along one chain of checkpoints but not across branches: a graph
   * resumed from an older checkpoint counts its versions up again from there.
   * So when several checkpoints stored one version, the one on `from`'s own
   * line of ancestors is it.
   */
  #resolve(channel: string, key: string, from: string): BlobEntry | undefined {
    const entries = this.#blobs.get(channel)?.get(key);
    if (!entries || entries.length <= 1) return entries?.[0];
    let id: string | null | undefined = from;
    for (let hops = 0; id && hops <= this.checkpoints.size; hops++) {
      const mine = entries.find((e) => e.writer === id);
      if (mine) return mine;
      id = this.checkpoints.get(id)?.storedParent;
    }
    return entries[entries.length - 1];
  }

  #putCheckpoint(data: CheckpointData, event: EventEnvelope): void {
    const existing = this.checkpoints.has(data.id);
    // A fork from a checkpoint before the snapshot sees values only the history holds.
    this.needsHistory ||= this.partial && data.parent !== null && !this.checkpoints.has(data.parent);
    this.checkpoints.set(data.id, {
      id: data.id,
      parent: data.parent,
      storedParent: data.parent,
      checkpoint: { stored: data.checkpoint },
      metadata: { stored: data.metadata },
      version: event.version,
      recordedAt: event.recordedAt,
      status: 'live',
    });
    if (!existing) insertSorted(this.#sorted, data.id);
    for (const [channel, blob] of Object.entries(data.values)) {
      const key = versionKey(blob.v);
      this.#storeBlob(channel, key, this.#entryFor(channel, blob, data.id));
      this.#newest.set(channel, { key, writer: data.id });
    }
  }

  /** The same checkpoint storing a version again replaces what it stored; another checkpoint's value at that version is kept beside it. */
  #storeBlob(channel: string, key: string, entry: BlobEntry): void {
    let versions = this.#blobs.get(channel);
    if (!versions) {
      versions = new Map();
      this.#blobs.set(channel, versions);
    }
    const entries = (versions.get(key) ?? []).filter((e) => e.writer !== entry.writer);
    entries.push(entry);
    versions.set(key, entries);
  }

  #entryFor(channel: string, blob: StoredBlob, writer: string): BlobEntry {
    if ('empty' in blob) return { value: { empty: true }, writer, fullSize: 0, deltaSize: 0 };
    if ('base' in blob) {
      const key = versionKey(blob.base);
      const base = this.#resolve(channel, key, writer);
      this.needsHistory ||= this.partial && base === undefined;
      const value = { base: key, tail: { stored: { j: blob.tail } } };
      return { value, writer, fullSize: base?.fullSize ?? 0, deltaSize: (base?.deltaSize ?? 0) + blob.tail.length };
    }
    const stored: StoredValue = 'j' in blob ? { j: blob.j } : { t: blob.t, b: blob.b };
    return { value: { full: { stored } }, writer, fullSize: 'j' in blob && Array.isArray(blob.j) ? blob.j.length : 0, deltaSize: 0 };
  }

  #putWrites(data: WritesData): void {
    let writes = this.#writes.get(data.checkpoint);
    if (!writes) {
      writes = new Map();
      this.#writes.set(data.checkpoint, writes);
    }
    for (const w of data.writes as StoredWrite[]) {
      const key = writeKey(data.task, w.idx);
      // Special writes (negative idx: errors, interrupts) replace; regular ones keep the first.
      if (w.idx >= 0 && writes.has(key)) continue;
      writes.set(key, { task: data.task, idx: w.idx, channel: w.channel, path: data.path ?? '', value: { stored: w.value } });
    }
  }
}

export function versionKey(version: Version): string {
  return typeof version === 'number' ? `n${version}` : `s${version}`;
}

function parseVersionKey(key: string): Version {
  return key.startsWith('n') ? Number(key.slice(1)) : key.slice(1);
}

function writeKey(task: string, idx: number): string {
  return `${task}\u0000${idx}`;
}

function insertSorted(sorted: string[], id: string): void {
  if (sorted.length === 0 || (sorted[sorted.length - 1] as string) < id) {
    sorted.push(id);
    return;
  }
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  sorted.splice(lo, 0, id);
}

function compareWrites(a: IndexedWrite, b: IndexedWrite): number {
  return compareWritesSortKeys(writesSortKey(a.path, a.task, a.idx), writesSortKey(b.path, b.task, b.idx));
}
