import type { EventEnvelope } from '../../events/envelope.js';
import type { EventStore } from '../../store/types.js';
import type { Submitted } from './channel-values.js';
import { parseStreamId, threadPrefix } from './events.js';
import { INDEX_SNAPSHOT_FORMAT, type IndexSnapshot, StreamIndex } from './thread-index.js';

const READ_PAGE = 5000;

/** What a caller needs of a stream's index beyond its latest checkpoint. */
export interface Need {
  history?: boolean;
  checkpoint?: string;
}

/** Can the index answer? A full one always can; one started from a snapshot knows only the latest and what followed. */
export function answers(index: StreamIndex, need: Need): boolean {
  return (
    !index.partial ||
    (!index.needsHistory && need.history !== true && (need.checkpoint === undefined || index.checkpoints.has(need.checkpoint)))
  );
}

/**
 * The saver's per-stream cache: the index (thread-index.ts) of each of the
 * most recently used streams (thread × namespace), caught up from the log on
 * every read, which keeps several processes sharing one store correct; and
 * what this process last put per channel, so the next value of a growing
 * list is stored as an appended tail.
 */
export class StreamCache {
  readonly #store: EventStore;
  readonly #prefix: string;
  readonly #size: number;
  readonly #indexes = new Map<string, StreamIndex>();
  readonly #building = new Map<string, Promise<StreamIndex>>();
  readonly #submitted = new Map<string, Map<string, Submitted>>();

  /** `size`: how many streams' indexes stay in memory. */
  constructor(store: EventStore, prefix: string, size: number) {
    this.#store = store;
    this.#prefix = prefix;
    this.#size = size;
  }

  /** The cached index as it stands, if any, without catching it up or counting it as used. */
  peek(streamId: string): StreamIndex | undefined {
    return this.#indexes.get(streamId);
  }

  /** Forgets what this process put on the stream (the thread was deleted: a later put starts afresh). */
  forgetSubmissions(streamId: string): void {
    this.#submitted.delete(streamId);
  }

  /** Streams of one thread (or of all threads), with their decoded names. */
  async streams(threadId: string | undefined): Promise<{ streamId: string; threadId: string; ns: string }[]> {
    const prefix = threadId === undefined ? `${this.#prefix}:` : threadPrefix(this.#prefix, threadId);
    const out: { streamId: string; threadId: string; ns: string }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.#store.listStreams({ prefix, after, limit: 1000 });
      for (const info of page) {
        const parsed = parseStreamId(this.#prefix, info.streamId);
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
  async load(streamId: string, need: Need = {}): Promise<StreamIndex> {
    const cached = this.touch(streamId);
    if (cached) {
      await this.catchUp(streamId, cached);
      if (answers(cached, need)) return cached;
    }
    return this.build(streamId, need.history !== true && need.checkpoint === undefined);
  }

  /** For writers: the cached index as it stands (expectedVersion tells them of others' appends), or a new one. */
  async cached(streamId: string): Promise<StreamIndex> {
    return this.touch(streamId) ?? this.build(streamId, true);
  }

  touch(streamId: string): StreamIndex | undefined {
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
  build(streamId: string, fromSnapshot: boolean): Promise<StreamIndex> {
    const key = `${fromSnapshot ? 'latest' : 'history'}\u0000${streamId}`;
    let building = this.#building.get(key);
    if (!building) {
      building = (async () => {
        const index = new StreamIndex();
        const snapshot = fromSnapshot ? await this.#store.loadSnapshot<IndexSnapshot>(streamId, INDEX_SNAPSHOT_FORMAT) : undefined;
        if (snapshot) index.restore(snapshot.state, snapshot.version);
        await this.catchUp(streamId, index);
        // What came after the snapshot (a rollback, a fork from further back) needs the history after all.
        if (!answers(index, {})) {
          index.reset();
          await this.catchUp(streamId, index);
        }
        this.#indexes.delete(streamId);
        if (this.#indexes.size >= this.#size) {
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
  submissions(streamId: string): Map<string, Submitted> {
    let submitted = this.#submitted.get(streamId);
    if (!submitted) {
      submitted = new Map();
      this.#submitted.set(streamId, submitted);
    }
    return submitted;
  }

  /** A snapshot is a cache beside the log: failing to write one loses nothing, so it never fails the put behind it. */
  async snapshot(streamId: string, index: StreamIndex): Promise<void> {
    index.snapshotAt = index.version;
    try {
      const snapshot = index.toSnapshot();
      if (snapshot) await this.#store.saveSnapshot(streamId, index.version, snapshot, INDEX_SNAPSHOT_FORMAT, { replaceOlder: true });
    } catch {
      // The next one is due 64 events later; until then a saver opening the thread reads a little more.
    }
  }

  /** Applies what the log holds beyond the index; returns the events that were new to it. */
  async catchUp(streamId: string, index: StreamIndex): Promise<EventEnvelope[]> {
    const applied: EventEnvelope[] = [];
    for (;;) {
      const events = await this.#store.read(streamId, { from: index.version + 1, limit: READ_PAGE });
      applied.push(...index.apply(events));
      if (events.length < READ_PAGE) break;
    }
    return applied;
  }

  /** Folds our own appended events in, reading whatever others appended in between. */
  async absorb(streamId: string, index: StreamIndex, events: EventEnvelope[]): Promise<void> {
    if ((events[0]?.version ?? 0) === index.version + 1) index.apply(events);
    else await this.catchUp(streamId, index);
  }
}
