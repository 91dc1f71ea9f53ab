import type { Changeset, StoredDoc } from '../apply.js';
import type { Doc } from '../definition.js';
import { type CheckedQuery, type FoundDoc, runQuery } from '../query.js';
import type { SyncPrimitives } from './sync-store.js';
import type { ProjectionRecord } from './types.js';

/**
 * Read models of the in-memory backend. Values are kept as JSON text, so every
 * read hands out a fresh copy, as a database would. Writes come only after
 * everything that can throw, so a failed transaction leaves nothing behind.
 */
export class MemoryPrimitives implements SyncPrimitives {
  readonly #records = new Map<string, string>();
  readonly #docs = new Map<string, Map<string, StoredDoc>>();

  write<T>(fn: () => T): T {
    return fn();
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
    this.#records.set(record.name, JSON.stringify(record));
  }

  getDoc(name: string, generation: number, key: string): StoredDoc | undefined {
    const doc = this.#docs.get(slot(name, generation))?.get(key);
    return doc && { ...doc };
  }

  writeChanges(name: string, generation: number, changes: Changeset): void {
    let docs = this.#docs.get(slot(name, generation));
    if (!docs) {
      docs = new Map();
      this.#docs.set(slot(name, generation), docs);
    }
    if (changes.wiped.size > 0) for (const [key, doc] of docs) if (changes.wiped.has(doc.streamId)) docs.delete(key);
    for (const [key, doc] of changes.docs) {
      if (doc === null) docs.delete(key);
      else docs.set(key, { ...doc });
    }
  }

  dropGeneration(name: string, generation: number): void {
    this.#docs.delete(slot(name, generation));
  }

  findDocs(name: string, generation: number, query: CheckedQuery): FoundDoc[] {
    const docs = this.#docs.get(slot(name, generation)) ?? new Map<string, StoredDoc>();
    const all = [...docs].map(([key, d]) => ({ key, streamId: d.streamId, doc: JSON.parse(d.json) as Doc }));
    return runQuery(all, query);
  }
}

const slot = (name: string, generation: number) => `${name}\u0000${generation}`;
