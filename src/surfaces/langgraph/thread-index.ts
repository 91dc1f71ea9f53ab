import { compareWritesSortKeys, writesSortKey } from '@langchain/langgraph-checkpoint';
import type { EventEnvelope, Json } from '../../events/envelope.js';
import {
  type CheckpointData,
  LangGraphEvents,
  type PrunedData,
  type RolledBackData,
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
  /** Items in the last full value this one is built on (its own when full). */
  fullSize: number;
  /** Items appended since that full value. */
  deltaSize: number;
}

/** The text the serde gave for a channel's newest value, kept to find the next one's appended tail. */
interface LastText {
  version: string;
  text: string;
}

/**
 * What one stream (thread + namespace) holds, folded from its events. Catches
 * up incrementally: `apply` ignores versions it already has, so two concurrent
 * catch-ups of the same index cannot double-apply an event.
 */
export class StreamIndex {
  version = 0;
  /** Caught up with the log at least once. */
  loaded = false;
  readonly checkpoints = new Map<string, IndexedCheckpoint>();
  /** Checkpoint ids, ascending (uuid6 ids sort by time). */
  #sorted: string[] = [];
  readonly #blobs = new Map<string, Map<string, BlobEntry>>();
  readonly #writes = new Map<string, Map<string, IndexedWrite>>();
  readonly #lastText = new Map<string, LastText>();

  apply(events: EventEnvelope[]): EventEnvelope[] {
    const applied: EventEnvelope[] = [];
    for (const event of events) {
      if (event.version !== this.version + 1) continue;
      this.version = event.version;
      applied.push(event);
      switch (event.type) {
        case LangGraphEvents.Checkpoint:
          this.#putCheckpoint(event.data as CheckpointData, event);
          break;
        case LangGraphEvents.Writes:
          this.#putWrites(event.data as WritesData);
          break;
        case LangGraphEvents.ThreadDeleted:
          this.checkpoints.clear();
          this.#sorted = [];
          this.#blobs.clear();
          this.#writes.clear();
          this.#lastText.clear();
          break;
        case LangGraphEvents.Pruned: {
          const data = event.data as PrunedData;
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
          const data = event.data as RolledBackData;
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
   * A channel's value at a version, rebuilt from its delta chain by joining
   * texts (no parsing); undefined when absent or empty.
   */
  valueAt(channel: string, version: Version): LoadedValue | undefined {
    const versions = this.#blobs.get(channel);
    let entry = versions?.get(versionKey(version));
    if (!entry || 'empty' in entry.value) return undefined;
    if ('full' in entry.value) return loaded(entry.value.full);
    const tails: string[] = [];
    let lc = false;
    while (entry && 'base' in entry.value) {
      const tail = loaded(entry.value.tail) as { text: string; lc: boolean };
      tails.push(tail.text.slice(1, -1));
      lc ||= tail.lc;
      entry = versions?.get(entry.value.base);
    }
    const full = entry && 'full' in entry.value ? loaded(entry.value.full) : undefined;
    if (!full || !('text' in full)) return undefined;
    let text = full.text.slice(0, -1);
    for (let i = tails.length - 1; i >= 0; i--) text += `,${tails[i]}`;
    return { text: `${text}]`, lc: lc || full.lc };
  }

  /**
   * How to store a channel's new value, given the serde's JSON text of it:
   * when the previous version's text is a proper prefix of this array, only
   * the tail is stored, until the tails hold as many items as the last full
   * value (so storage stays linear in the list's length and a rebuild reads at
   * most twice the value).
   */
  encodeBlob(channel: string, version: Version, text: string): StoredBlob {
    const last = this.#lastText.get(channel);
    const base = last ? this.#blobs.get(channel)?.get(last.version) : undefined;
    if (last && base && !('empty' in base.value) && isAppendedArray(last.text, text)) {
      const tail = JSON.parse(`[${text.slice(last.text.length)}`) as Json[];
      if (base.deltaSize + tail.length <= base.fullSize) return { v: version, base: parseVersionKey(last.version), tail };
    }
    return { v: version, j: JSON.parse(text) as Json };
  }

  /** Called after this process appended a value, so the next step can be stored as a tail. */
  rememberText(channel: string, version: Version, text: string): void {
    this.#lastText.set(channel, { version: versionKey(version), text });
  }

  #putCheckpoint(data: CheckpointData, event: EventEnvelope): void {
    const existing = this.checkpoints.has(data.id);
    this.checkpoints.set(data.id, {
      id: data.id,
      parent: data.parent,
      checkpoint: { stored: data.checkpoint },
      metadata: { stored: data.metadata },
      version: event.version,
      recordedAt: event.recordedAt,
      status: 'live',
    });
    if (!existing) insertSorted(this.#sorted, data.id);
    for (const [channel, blob] of Object.entries(data.values)) {
      let versions = this.#blobs.get(channel);
      if (!versions) {
        versions = new Map();
        this.#blobs.set(channel, versions);
      }
      const key = versionKey(blob.v);
      versions.set(key, this.#entryFor(versions, blob));
      const last = this.#lastText.get(channel);
      // Another writer's value: our remembered text no longer describes the newest version.
      if (last && last.version !== key) this.#lastText.delete(channel);
    }
  }

  #entryFor(versions: Map<string, BlobEntry>, blob: StoredBlob): BlobEntry {
    if ('empty' in blob) return { value: { empty: true }, fullSize: 0, deltaSize: 0 };
    if ('base' in blob) {
      const base = versions.get(versionKey(blob.base));
      const value = { base: versionKey(blob.base), tail: { stored: { j: blob.tail } } };
      return { value, fullSize: base?.fullSize ?? 0, deltaSize: (base?.deltaSize ?? 0) + blob.tail.length };
    }
    const stored: StoredValue = 'j' in blob ? { j: blob.j } : { t: blob.t, b: blob.b };
    return { value: { full: { stored } }, fullSize: 'j' in blob && Array.isArray(blob.j) ? blob.j.length : 0, deltaSize: 0 };
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

function isAppendedArray(previous: string, next: string): boolean {
  return (
    previous.length > 2 &&
    previous.charCodeAt(0) === 91 /* [ */ &&
    next.length > previous.length &&
    next.charCodeAt(previous.length - 1) === 44 /* , */ &&
    next.startsWith(previous.slice(0, -1))
  );
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
