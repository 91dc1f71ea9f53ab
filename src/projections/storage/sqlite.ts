import type Database from 'better-sqlite3';
import type { Changeset, StoredDoc } from '../apply.js';
import type { Doc } from '../definition.js';
import type { CheckedQuery, FoundDoc, Scalar } from '../query.js';
import type { SyncPrimitives } from './sync-store.js';
import type { ProjectionRecord } from './types.js';

// In the log's own file, so an inline projection commits with the append and a
// consumer's documents commit with its position.
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS projections (
    name                  TEXT    PRIMARY KEY,
    version               INTEGER NOT NULL,
    generation            INTEGER NOT NULL,
    position              INTEGER NOT NULL,
    last_event_at         TEXT,
    error                 TEXT,
    error_position        INTEGER,
    rebuild_generation    INTEGER,
    rebuild_version       INTEGER,
    rebuild_position      INTEGER,
    rebuild_last_event_at TEXT,
    updated_at            TEXT    NOT NULL
  ) STRICT, WITHOUT ROWID;
  -- A rowid table: documents can be large, which WITHOUT ROWID handles badly.
  CREATE TABLE IF NOT EXISTS projection_docs (
    projection TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    stream_id  TEXT    NOT NULL,
    doc        TEXT    NOT NULL,
    UNIQUE (projection, generation, key)
  ) STRICT;
  -- A rollback deletes one stream's documents.
  CREATE INDEX IF NOT EXISTS projection_docs_by_stream ON projection_docs (projection, generation, stream_id);
`;

interface RecordRow {
  name: string;
  version: number;
  generation: number;
  position: number;
  last_event_at: string | null;
  error: string | null;
  error_position: number | null;
  rebuild_generation: number | null;
  rebuild_version: number | null;
  rebuild_position: number | null;
  rebuild_last_event_at: string | null;
  updated_at: string;
}

/** Read models in the SQLite file of the log, on the log's connection. */
export class SqlitePrimitives implements SyncPrimitives {
  readonly #db: Database.Database;
  readonly #sql;
  readonly #finds = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.#db = db;
    if (!db.readonly) db.transaction(() => db.exec(SCHEMA)).immediate();
    else if (db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'projections'").pluck().get() === 0) {
      // A read-only file no projection ever ran on: empty tables of this connection's own stand in, so status reads position 0.
      db.exec(SCHEMA.replaceAll('CREATE TABLE', 'CREATE TEMP TABLE').replace(/CREATE INDEX[^;]*;/, ''));
    }
    this.#sql = {
      getRecord: db.prepare<[string], RecordRow>('SELECT * FROM projections WHERE name = ?'),
      listRecords: db.prepare<[], RecordRow>('SELECT * FROM projections ORDER BY name'),
      putRecord: db.prepare(
        `INSERT OR REPLACE INTO projections VALUES (@name, @version, @generation, @position, @last_event_at, @error, @error_position,
           @rebuild_generation, @rebuild_version, @rebuild_position, @rebuild_last_event_at, @updated_at)`,
      ),
      getDoc: db.prepare<[string, number, string], { streamId: string; json: string }>(
        'SELECT stream_id AS streamId, doc AS json FROM projection_docs WHERE projection = ? AND generation = ? AND key = ?',
      ),
      putDoc: db.prepare(
        `INSERT INTO projection_docs (projection, generation, key, stream_id, doc) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (projection, generation, key) DO UPDATE SET stream_id = excluded.stream_id, doc = excluded.doc`,
      ),
      deleteDoc: db.prepare('DELETE FROM projection_docs WHERE projection = ? AND generation = ? AND key = ?'),
      deleteStream: db.prepare('DELETE FROM projection_docs WHERE projection = ? AND generation = ? AND stream_id = ?'),
      dropGeneration: db.prepare('DELETE FROM projection_docs WHERE projection = ? AND generation = ?'),
    };
  }

  write<T>(fn: () => T): T {
    // IMMEDIATE: the position check and the write see the same state, whatever other processes do.
    return this.#db.transaction(fn).immediate();
  }

  read<T>(fn: () => T): T {
    return this.#db.transaction(fn).deferred();
  }

  inAppend(fn: () => void): undefined {
    // The append's savepoint holds these writes with its events: a refusal rolls both back.
    fn();
  }

  getRecord(name: string): ProjectionRecord | undefined {
    const row = this.#sql.getRecord.get(name);
    return row && fromRow(row);
  }

  listRecords(): ProjectionRecord[] {
    return this.#sql.listRecords.all().map(fromRow);
  }

  putRecord(r: ProjectionRecord): void {
    this.#sql.putRecord.run({
      name: r.name,
      version: r.version,
      generation: r.generation,
      position: r.position,
      last_event_at: r.lastEventAt,
      error: r.error,
      error_position: r.errorPosition,
      rebuild_generation: r.rebuild?.generation ?? null,
      rebuild_version: r.rebuild?.version ?? null,
      rebuild_position: r.rebuild?.position ?? null,
      rebuild_last_event_at: r.rebuild?.lastEventAt ?? null,
      updated_at: r.updatedAt,
    });
  }

  getDoc(name: string, generation: number, key: string): StoredDoc | undefined {
    return this.#sql.getDoc.get(name, generation, key);
  }

  writeChanges(name: string, generation: number, changes: Changeset): void {
    for (const streamId of changes.wiped) this.#sql.deleteStream.run(name, generation, streamId);
    for (const [key, doc] of changes.docs) {
      if (doc === null) this.#sql.deleteDoc.run(name, generation, key);
      else this.#sql.putDoc.run(name, generation, key, doc.streamId, doc.json);
    }
  }

  dropGeneration(name: string, generation: number): void {
    this.#sql.dropGeneration.run(name, generation);
  }

  findDocs(name: string, generation: number, query: CheckedQuery): FoundDoc[] {
    const params: unknown[] = [name, generation];
    const where = query.where.map(([field, value]) => {
      params.push(`$.${field}`);
      const [test, arg] = sqlEquals(value);
      if (arg !== undefined) params.push(`$.${field}`, arg);
      return test;
    });
    let order = 'key';
    if (query.order) {
      params.push(...Array.from({ length: 3 }, () => `$.${query.order?.field}`));
      const dir = query.order.direction === 'asc' ? 'ASC' : 'DESC';
      // The order of query.ts: missing/null, booleans, numbers, strings, then objects and arrays (tied).
      // Text compares as UTF-8 bytes (BINARY), which is code point order, as compareText() in query.ts.
      order = `CASE coalesce(json_type(doc, ?), 'null') WHEN 'null' THEN 0 WHEN 'false' THEN 1 WHEN 'true' THEN 1
        WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 ELSE 4 END ${dir},
        CASE WHEN json_type(doc, ?) IN ('object', 'array') THEN NULL ELSE json_extract(doc, ?) END ${dir}, key`;
    }
    params.push(query.limit, query.offset);
    const sql = `SELECT key, stream_id AS streamId, doc FROM projection_docs WHERE projection = ? AND generation = ?
      ${where.map((w) => `AND ${w}`).join(' ')} ORDER BY ${order} LIMIT ? OFFSET ?`;
    let statement = this.#finds.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#finds.set(sql, statement);
    }
    return (statement.all(...params) as { key: string; streamId: string; doc: string }[]).map((r) => ({
      key: r.key,
      streamId: r.streamId,
      doc: JSON.parse(r.doc) as Doc,
    }));
  }
}

/** A JSON-typed equality, so the string "1" never matches the number 1, nor true the number 1. */
function sqlEquals(value: Scalar): [string, unknown] | [string] {
  if (value === null) return ["json_type(doc, ?) = 'null'"];
  if (value === true) return ["json_type(doc, ?) = 'true'"];
  if (value === false) return ["json_type(doc, ?) = 'false'"];
  if (typeof value === 'number') return ["json_type(doc, ?) IN ('integer', 'real') AND json_extract(doc, ?) = ?", value];
  return ["json_type(doc, ?) = 'text' AND json_extract(doc, ?) = ?", value];
}

function fromRow(row: RecordRow): ProjectionRecord {
  return {
    name: row.name,
    version: row.version,
    generation: row.generation,
    position: row.position,
    lastEventAt: row.last_event_at,
    error: row.error,
    errorPosition: row.error_position,
    rebuild:
      row.rebuild_generation === null
        ? null
        : {
            generation: row.rebuild_generation,
            version: row.rebuild_version as number,
            position: row.rebuild_position as number,
            lastEventAt: row.rebuild_last_event_at,
          },
    updatedAt: row.updated_at,
  };
}
