import type { EventEnvelope } from '../../events/envelope.js';
import type { EventFilter, SyncProjectionHost } from '../../store/types.js';
import type { Changeset, DocView, StoredDoc } from '../apply.js';
import type { Doc } from '../definition.js';
import { applyInline } from '../inline.js';
import type { CheckedQuery, FoundDoc } from '../query.js';
import type { Applier, Batch, InlineProjection, ProjectionRecord, ReadModelStore, Target } from './types.js';

/** What memory and SQLite each provide; the logic over it (conditions, swaps, inline) is shared below. */
export interface SyncPrimitives {
  /** An exclusive write transaction: SQLite's BEGIN IMMEDIATE holds off every other writer, appends included. */
  write<T>(fn: () => T): T;
  /** A consistent snapshot for reads. */
  read<T>(fn: () => T): T;
  /**
   * Runs an inline projection's writes inside an append. All of them or none
   * (if `fn` throws); the result takes them back should the append be refused
   * after them (memory; SQLite's savepoint of the append covers them).
   */
  inAppend(fn: () => void): (() => void) | undefined;
  getRecord(name: string): ProjectionRecord | undefined;
  listRecords(): ProjectionRecord[];
  putRecord(record: ProjectionRecord): void;
  getDoc(name: string, generation: number, key: string): StoredDoc | undefined;
  writeChanges(name: string, generation: number, changes: Changeset): void;
  dropGeneration(name: string, generation: number): void;
  findDocs(name: string, generation: number, query: CheckedQuery): FoundDoc[];
}

const PAGE = 10_000;

/** A ReadModelStore for backends whose transactions are synchronous (memory, SQLite). */
export class SyncReadModelStore implements ReadModelStore {
  readonly #p: SyncPrimitives;
  readonly #host: SyncProjectionHost;
  readonly #now: () => string;

  constructor(primitives: SyncPrimitives, host: SyncProjectionHost, now: () => string = () => new Date().toISOString()) {
    this.#p = primitives;
    this.#host = host;
    this.#now = now;
  }

  async records(): Promise<ProjectionRecord[]> {
    return this.#p.read(() => this.#p.listRecords());
  }

  async record(name: string): Promise<ProjectionRecord | undefined> {
    return this.#p.read(() => this.#p.getRecord(name));
  }

  async ensure(name: string, version: number): Promise<ProjectionRecord> {
    return this.#p.write(() => {
      const found = this.#p.getRecord(name);
      if (found) return found;
      const record: ProjectionRecord = {
        name,
        version,
        generation: 1,
        position: 0,
        lastEventAt: null,
        error: null,
        errorPosition: null,
        rebuild: null,
        updatedAt: this.#now(),
      };
      this.#p.putRecord(record);
      return record;
    });
  }

  async commit(batch: Batch): Promise<'ok' | 'moved'> {
    return this.#p.write(() => {
      const record = this.#p.getRecord(batch.name);
      const at = record && stateOf(record, batch.target);
      if (!record || record.error !== null || !at || at.generation !== batch.generation || at.position !== batch.from) return 'moved';
      const changes = batch.applier.apply(batch.events, this.#view(batch.name, batch.generation));
      this.#p.writeChanges(batch.name, batch.generation, changes);
      this.#p.putRecord(advance(record, batch.target, batch.to, batch.lastEventAt ?? at.lastEventAt, this.#now()));
      return 'ok';
    });
  }

  async fail(name: string, from: number, target: Target, message: string, position: number): Promise<void> {
    this.#p.write(() => {
      const record = this.#p.getRecord(name);
      if (!record || stateOf(record, target)?.position !== from) return;
      this.#p.putRecord({ ...record, error: message, errorPosition: position, updatedAt: this.#now() });
    });
  }

  async resume(name: string): Promise<boolean> {
    return this.#p.write(() => {
      const record = this.#p.getRecord(name);
      if (!record || record.error === null) return false;
      this.#p.putRecord({ ...record, error: null, errorPosition: null, updatedAt: this.#now() });
      return true;
    });
  }

  async startRebuild(name: string, version: number): Promise<ProjectionRecord> {
    return this.#p.write(() => {
      const record = this.#p.getRecord(name) as ProjectionRecord;
      const generation = Math.max(record.generation, record.rebuild?.generation ?? 0) + 1;
      if (record.rebuild) this.#p.dropGeneration(name, record.rebuild.generation);
      this.#p.dropGeneration(name, generation);
      const next: ProjectionRecord = {
        ...record,
        error: null,
        errorPosition: null,
        rebuild: { generation, version, position: 0, lastEventAt: null },
        updatedAt: this.#now(),
      };
      this.#p.putRecord(next);
      return next;
    });
  }

  async finishRebuild(name: string, generation: number, from: number, applier: Applier): Promise<'ok' | 'moved'> {
    return this.#p.write(() => {
      const record = this.#p.getRecord(name);
      const rebuild = record?.rebuild;
      if (!record || record.error !== null || !rebuild || rebuild.generation !== generation || rebuild.position !== from) return 'moved';
      const { events, head } = this.#readAfter(from, Number.POSITIVE_INFINITY, applier.filter);
      this.#p.writeChanges(name, generation, applier.apply(events, this.#view(name, generation)));
      this.#p.dropGeneration(name, record.generation);
      this.#p.putRecord({
        ...record,
        version: rebuild.version,
        generation,
        position: Math.max(head, from),
        lastEventAt: events.at(-1)?.recordedAt ?? rebuild.lastEventAt,
        rebuild: null,
        updatedAt: this.#now(),
      });
      return 'ok';
    });
  }

  async get(name: string, key: string): Promise<Doc | undefined> {
    const found = this.#p.read(() => {
      const record = this.#p.getRecord(name);
      return record ? this.#p.getDoc(name, record.generation, key) : undefined;
    });
    return found ? (JSON.parse(found.json) as Doc) : undefined;
  }

  async find(name: string, query: CheckedQuery): Promise<FoundDoc[]> {
    return this.#p.read(() => {
      const record = this.#p.getRecord(name);
      return record ? this.#p.findDocs(name, record.generation, query) : [];
    });
  }

  installInline(projections: InlineProjection[]): () => void {
    // Already inside the append's transaction (and its savepoint): no transaction of our own.
    return this.#host.addAppendHook((written) =>
      this.#p.inAppend(() => {
        const first = written[0] as EventEnvelope;
        const last = written[written.length - 1] as EventEnvelope;
        for (const projection of projections) {
          const record = this.#p.getRecord(projection.name);
          // A new version waits for its rebuild to swap in; a stopped projection for its resume.
          if (!record || record.version !== projection.version || record.error !== null || record.position >= last.position) continue;
          const missed = first.position > record.position + 1 ? this.#readAfter(record.position, first.position - 1).events : [];
          const view = this.#view(projection.name, record.generation);
          const own = written.filter((e) => e.position > record.position);
          const applied = applyInline(record, projection.applier, missed, own, view, this.#now());
          if (!applied) continue;
          this.#p.writeChanges(projection.name, record.generation, applied.changes);
          this.#p.putRecord(applied.record);
        }
      }),
    );
  }

  async close(): Promise<void> {}

  #view(name: string, generation: number): DocView {
    return {
      get: (key) => this.#p.getDoc(name, generation, key),
      history: (streamId, toVersion) => this.#host.readStreamSync(streamId, toVersion),
    };
  }

  /** Every event with from < position ≤ to, and the head it read up to. */
  #readAfter(from: number, to: number, filter?: EventFilter): { events: EventEnvelope[]; head: number } {
    const events: EventEnvelope[] = [];
    let next = from + 1;
    for (;;) {
      const page = this.#host.readAllSync(next, PAGE, filter);
      for (const event of page.events) if (event.position <= to) events.push(event);
      const lastRead = page.events.at(-1);
      if (page.events.length < PAGE || !lastRead || lastRead.position >= to) return { events, head: Math.min(page.scannedTo, to) };
      next = lastRead.position + 1;
    }
  }
}

export function stateOf(
  record: ProjectionRecord,
  target: Target,
): { generation: number; position: number; lastEventAt: string | null } | undefined {
  return target === 'active' ? record : (record.rebuild ?? undefined);
}

export function advance(
  record: ProjectionRecord,
  target: Target,
  position: number,
  lastEventAt: string | null,
  now: string,
): ProjectionRecord {
  if (target === 'active') return { ...record, position, lastEventAt, updatedAt: now };
  return { ...record, rebuild: { ...(record.rebuild as NonNullable<ProjectionRecord['rebuild']>), position, lastEventAt }, updatedAt: now };
}
