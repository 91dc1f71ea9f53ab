import type { Changeset, StoredDoc } from '../apply.js';
import type { Doc } from '../definition.js';
import { type CheckedQuery, type FoundDoc, runQuery } from '../query.js';
import type { SyncPrimitives } from './sync-store.js';
import type { ProjectionRecord } from './types.js';

/**
 * Read models of the in-memory backend. Values are kept as JSON text, so every
 * read hands out a fresh copy, as a database would. Writes come only after
 * everything that can throw, so a failed transaction leaves nothing behind;
 * inside an append, where a later hook can still refuse it, every write is
 * journaled so that it can be taken back with the append's events.
 */
export class MemoryPrimitives implements SyncPrimitives {
  readonly #records = new Map<string, string>();
  readonly #docs = new Map<string, Map<string, StoredDoc>>();
  #journal: (() => void)[] | undefined;

  write<T>(fn: () => T): T {
    return fn();
  }

  inAppend(fn: () => void): () => void {
    const journal: (() => void)[] = [];
    const undo = () => {
      for (const step of journal.splice(0).reverse()) step();
    };
    this.#journal = journal;
    try {
      fn();
    } catch (error) {
      undo();
      throw error;
    } finally {
      this.#journal = undefined;
    }
    return undo;
  }

  read<T>(fn: () => T): T {
    return fn();
  }

  getRecord(name: string): ProjectionRecord | undefined {
    const json = this.#records.get(name);
    return json === undefined ? undefined : (JSON.parse(json) as ProjectionRecord);
  }

  listRecords(): ProjectionRecord[] {
    return [...this.#records.keys()].sort().map((name) => this.getRecord(name) as ProjectionRecord);
  }

  putRecord(record: ProjectionRecord): void {
    const before = this.#records.get(record.name);
    this.#journal?.push(() => (before === undefined ? this.#records.delete(record.name) : this.#records.set(record.name, before)));
    this.#records.set(record.name, JSON.stringify(record));
  }

  getDoc(name: string, generation: number, key: string): StoredDoc | undefined {
    const doc = this.#docs.get(slot(name, generation))?.get(key);
    return doc && { ...doc };
  }

  writeChanges(name: string, generation: number, changes: Changeset): void {
    const docs = this.#docs.get(slot(name, generation)) ?? new Map<string, StoredDoc>();
    this.#docs.set(slot(name, generation), docs);
    const set = (key: string, doc: StoredDoc | undefined) => {
      const before = docs.get(key);
      this.#journal?.push(() => (before ? docs.set(key, before) : docs.delete(key)));
      if (doc) docs.set(key, { ...doc });
      else docs.delete(key);
    };
    if (changes.wiped.size > 0) for (const [key, doc] of docs) if (changes.wiped.has(doc.streamId)) set(key, undefined);
    for (const [key, doc] of changes.docs) set(key, doc ?? undefined);
  }

  dropGeneration(name: string, generation: number): void {
    const before = this.#docs.get(slot(name, generation));
    if (before) this.#journal?.push(() => this.#docs.set(slot(name, generation), before));
    this.#docs.delete(slot(name, generation));
  }

  findDocs(name: string, generation: number, query: CheckedQuery): FoundDoc[] {
    const docs = this.#docs.get(slot(name, generation)) ?? new Map<string, StoredDoc>();
    const all = [...docs].map(([key, d]) => ({ key, streamId: d.streamId, doc: JSON.parse(d.json) as Doc }));
    return runQuery(all, query);
  }
}

const slot = (name: string, generation: number) => `${name}\u0000${generation}`;
