import type pg from 'pg';
import type { EventEnvelope } from '../../events/envelope.js';
import type { PostgresAppendTransaction, PostgresProjectionHost, StorageBackend } from '../../store/types.js';
import type { Changeset, DocView, StoredDoc } from '../apply.js';
import type { Doc } from '../definition.js';
import { applyInline } from '../inline.js';
import type { CheckedQuery, FoundDoc, Scalar } from '../query.js';
import { advance, stateOf } from './sync-store.js';
import type { Applier, Batch, InlineProjection, ProjectionRecord, ReadModelStore, Target } from './types.js';

interface RecordRow {
  name: string;
  version: number;
  generation: number;
  position: string;
  last_event_at: string | null;
  error: string | null;
  error_position: string | null;
  rebuild_generation: number | null;
  rebuild_version: number | null;
  rebuild_position: string | null;
  rebuild_last_event_at: string | null;
  updated_at: string;
}

const PAGE = 10_000;

/**
 * Read models in the log's PostgreSQL schema (tables from migration 2 of
 * store/postgres/schema.ts). Each write is one transaction that locks the
 * projection's registry row (FOR UPDATE) and checks the position it started
 * from, so two consumers in two processes never apply a page twice.
 * Handlers are synchronous, so the documents a page needs are loaded first.
 */
export class PostgresReadModelStore implements ReadModelStore {
  readonly #pool: pg.Pool;
  readonly #s: string;
  readonly #backend: StorageBackend;
  readonly #host: PostgresProjectionHost;

  constructor(host: PostgresProjectionHost, backend: StorageBackend) {
    this.#pool = host.pool;
    this.#s = host.schema;
    this.#backend = backend;
    this.#host = host;
  }

  async records(): Promise<ProjectionRecord[]> {
    const { rows } = await this.#pool.query<RecordRow>(`SELECT * FROM ${this.#s}.projections ORDER BY name`);
    return rows.map(fromRow);
  }

  async record(name: string): Promise<ProjectionRecord | undefined> {
    const { rows } = await this.#pool.query<RecordRow>(`SELECT * FROM ${this.#s}.projections WHERE name = $1`, [name]);
    return rows[0] && fromRow(rows[0]);
  }

  async ensure(name: string, version: number, mode: 'inline' | 'async' = 'async'): Promise<ProjectionRecord> {
    // The last process to open a projection decides whether appends take turns for it (see INLINE_TURNS in schema.ts).
    await this.#pool.query(
      `INSERT INTO ${this.#s}.projections (name, inline, version, generation, position, updated_at) VALUES ($1, $2, $3, 1, 0, $4)
       ON CONFLICT (name) DO UPDATE SET inline = EXCLUDED.inline`,
      [name, mode === 'inline', version, now()],
    );
    return (await this.record(name)) as ProjectionRecord;
  }

  async commit(batch: Batch): Promise<'ok' | 'moved'> {
    return this.#transaction(async (client) => {
      const record = await this.#lock(client, batch.name);
      const at = record && stateOf(record, batch.target);
      if (!record || record.error !== null || !at || at.generation !== batch.generation || at.position !== batch.from) return 'moved';
      const view = await this.#preload(client, batch.name, batch.generation, batch.events, batch.applier, this.#committedStream);
      await this.#write(client, batch.name, batch.generation, batch.applier.apply(batch.events, view));
      await this.#put(client, advance(record, batch.target, batch.to, batch.lastEventAt ?? at.lastEventAt, now()));
      return 'ok';
    });
  }

  async fail(name: string, from: number, target: Target, message: string, position: number): Promise<void> {
    await this.#transaction(async (client) => {
      const record = await this.#lock(client, name);
      if (!record || stateOf(record, target)?.position !== from) return;
      await this.#put(client, { ...record, error: message, errorPosition: position, updatedAt: now() });
    });
  }

  async resume(name: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      `UPDATE ${this.#s}.projections SET error = NULL, error_position = NULL, updated_at = $2 WHERE name = $1 AND error IS NOT NULL`,
      [name, now()],
    );
    return (rowCount ?? 0) > 0;
  }

  async startRebuild(name: string, version: number): Promise<ProjectionRecord> {
    return this.#transaction(async (client) => {
      const record = (await this.#lock(client, name)) as ProjectionRecord;
      const generation = Math.max(record.generation, record.rebuild?.generation ?? 0) + 1;
      if (record.rebuild) await this.#drop(client, name, record.rebuild.generation);
      await this.#drop(client, name, generation);
      const next: ProjectionRecord = {
        ...record,
        error: null,
        errorPosition: null,
        rebuild: { generation, version, position: 0, lastEventAt: null },
        updatedAt: now(),
      };
      await this.#put(client, next);
      return next;
    });
  }

  /**
   * Takes the lock appends take turns on (while inline projections exist), so
   * no inline append runs between the tail read here and the swap. The tail is
   * read under the xmin rule: whatever it cannot see yet, the next page (or
   * the next inline append) applies after the swap.
   */
  async finishRebuild(name: string, generation: number, from: number, applier: Applier): Promise<'ok' | 'moved'> {
    return this.#transaction(async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(${this.#host.inlineLock})`);
      const events: EventEnvelope[] = [];
      let next = from + 1;
      let head = from;
      for (;;) {
        const page = await this.#backend.readAll(next, PAGE, applier.filter);
        events.push(...page.events);
        head = Math.max(head, page.scannedTo);
        if (page.events.length < PAGE) break;
        next = (page.events.at(-1) as EventEnvelope).position + 1;
      }
      const record = await this.#lock(client, name);
      const rebuild = record?.rebuild;
      if (!record || record.error !== null || !rebuild || rebuild.generation !== generation || rebuild.position !== from) return 'moved';
      const view = await this.#preload(client, name, generation, events, applier, this.#committedStream);
      await this.#write(client, name, generation, applier.apply(events, view));
      await this.#drop(client, name, record.generation);
      await this.#put(client, {
        ...record,
        version: rebuild.version,
        generation,
        position: head,
        lastEventAt: events.at(-1)?.recordedAt ?? rebuild.lastEventAt,
        rebuild: null,
        updatedAt: now(),
      });
      return 'ok';
    });
  }

  async get(name: string, key: string): Promise<Doc | undefined> {
    const { rows } = await this.#pool.query<{ doc: Doc }>(
      `SELECT d.doc FROM ${this.#s}.projection_docs d JOIN ${this.#s}.projections p ON p.name = d.projection AND p.generation = d.generation
       WHERE d.projection = $1 AND d.key = $2`,
      [name, key],
    );
    return rows[0]?.doc;
  }

  async find(name: string, query: CheckedQuery): Promise<FoundDoc[]> {
    const params: unknown[] = [name];
    const arg = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    const where = query.where.map(([field, value]) => pgEquals(arg(field), value, arg));
    let order = 'd.key';
    if (query.order) {
      const f = arg(query.order.field);
      const dir = query.order.direction === 'asc' ? 'ASC' : 'DESC';
      const t = `jsonb_typeof(d.doc -> ${f})`;
      // The order of query.ts: missing/null, booleans, numbers, strings, then objects and arrays (tied).
      // COLLATE "C" compares UTF-8 bytes, which is code point order, as compareText() in query.ts.
      order = `CASE coalesce(${t}, 'null') WHEN 'null' THEN 0 WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3 ELSE 4 END ${dir},
        CASE WHEN ${t} = 'number' THEN (d.doc ->> ${f})::numeric END ${dir},
        CASE WHEN ${t} IN ('string', 'boolean') THEN d.doc ->> ${f} END COLLATE "C" ${dir}, d.key`;
    }
    const sql = `SELECT d.key, d.stream_id, d.doc FROM ${this.#s}.projection_docs d
      JOIN ${this.#s}.projections p ON p.name = d.projection AND p.generation = d.generation
      WHERE d.projection = $1 ${where.map((w) => `AND ${w}`).join(' ')}
      ORDER BY ${order} LIMIT ${arg(query.limit)} OFFSET ${arg(query.offset)}`;
    const { rows } = await this.#pool.query<{ key: string; stream_id: string; doc: Doc }>(sql, params);
    return rows.map((r) => ({ key: r.key, streamId: r.stream_id, doc: r.doc }));
  }

  /**
   * In the appending transaction: appends take turns while an inline
   * projection is registered, so every event after the projection's position
   * is committed or this transaction's own, and reading them all is complete.
   * The rule for events the projection cannot apply is applyInline's.
   */
  installInline(projections: InlineProjection[]): () => void {
    return this.#host.addAppendHook(async (tx) => {
      for (const projection of projections) {
        if (await this.#applyInlineAtOnce(tx, projection)) continue;
        const record = await this.#lock(tx.client, projection.name);
        if (!record || record.version !== projection.version || record.error !== null) continue;
        const { written, others } = await tx.eventsAfter(record.position);
        const all = [...others, ...written];
        const view = await this.#preload(tx.client, projection.name, record.generation, all, projection.applier, tx.readStream);
        const applied = applyInline(record, projection.applier, others, written, view, now());
        if (!applied) continue;
        await this.#write(tx.client, projection.name, record.generation, applied.changes);
        await this.#put(tx.client, applied.record);
      }
    });
  }

  /**
   * The usual inline append in two statements: the registry row locked with
   * the documents the append's events touch (read with it), then the
   * documents and the registry row written together. It holds when nothing
   * was appended after the projection's position but by this transaction,
   * and no event is a rollback marker (which needs a stream's history);
   * otherwise false, and the general path above takes it.
   */
  async #applyInlineAtOnce(tx: PostgresAppendTransaction, projection: InlineProjection): Promise<boolean> {
    const { applier } = projection;
    if (applier.rollbacks(tx.results).length > 0) return false;
    const keys = new Set<string>();
    for (const event of tx.results) {
      const key = applier.keyOf(event);
      if (key !== undefined) keys.add(key);
    }
    const { rows } = await tx.client.query<
      RecordRow & { next: string | null; keys: string[] | null; streams: string[] | null; docs: string[] | null }
    >({
      text: `WITH rec AS (SELECT * FROM ${this.#s}.projections WHERE name = $1 FOR UPDATE)
       SELECT rec.*,
         -- The first event after the position (system streams aside): through the primary key, whatever the statistics say.
         (SELECT e.position FROM ${this.#s}.events e WHERE e.position > rec.position AND left(e.stream_id, 1) <> '$'
          ORDER BY e.position LIMIT 1) AS next,
         d.keys, d.streams, d.docs
       FROM rec LEFT JOIN LATERAL (
         SELECT array_agg(x.key) AS keys, array_agg(x.stream_id) AS streams, array_agg(x.doc::text) AS docs
         FROM unnest($2::text[]) k(key)
         -- OFFSET 0 keeps the lookup per key: one primary-key probe each, however few rows the planner expects.
         CROSS JOIN LATERAL (SELECT * FROM ${this.#s}.projection_docs y
           WHERE y.projection = $1 AND y.generation = rec.generation AND y.key = k.key OFFSET 0) x) d ON true`,
      values: [projection.name, [...keys]],
    });
    const row = rows[0];
    // Not registered, another version, or stopped: as the general path, the append goes on without it.
    if (!row) return true;
    const record = fromRow(row);
    if (record.version !== projection.version || record.error !== null) return true;
    // Appends take turns: the first event after the position is this transaction's, or another's was missed.
    if (row.next !== null && !tx.results.some((e) => e.position === Number(row.next))) return false;
    const docs = new Map<string, StoredDoc>();
    const found = row.keys ?? [];
    for (let i = 0; i < found.length; i++)
      docs.set(found[i] as string, { streamId: (row.streams ?? [])[i] as string, json: (row.docs ?? [])[i] as string });
    const view: DocView = {
      get: (key) => {
        if (!keys.has(key)) throw new Error(`internal: document "${key}" was not preloaded`);
        return docs.get(key);
      },
      history: (streamId) => {
        throw new Error(`internal: history of "${streamId}" was not preloaded`);
      },
    };
    // Nothing after the position is another transaction's: the results past it are this one's (a repeat's are at or before it).
    const written = tx.results.filter((e) => e.position > record.position);
    const applied = applyInline(record, applier, [], written, view, now());
    if (!applied) return true;
    if (applied.changes.wiped.size > 0) {
      await this.#write(tx.client, projection.name, record.generation, applied.changes);
      await this.#put(tx.client, applied.record);
      return true;
    }
    const { gone, keys: upKeys, streams, docs: upDocs } = split(applied.changes);
    const put = putStatement(this.#s, applied.record, 6);
    await tx.client.query(
      `WITH gone AS (DELETE FROM ${this.#s}.projection_docs WHERE projection = $1 AND generation = $2 AND key = ANY ($3)),
       up AS (INSERT INTO ${this.#s}.projection_docs (projection, generation, key, stream_id, doc)
         SELECT $1, $2, u.key, u.stream_id, u.doc::jsonb FROM unnest($4::text[], $5::text[], $6::text[]) u(key, stream_id, doc)
         ON CONFLICT (projection, generation, key) DO UPDATE SET stream_id = EXCLUDED.stream_id, doc = EXCLUDED.doc)
       ${put.text}`,
      [projection.name, record.generation, gone, upKeys, streams, upDocs, ...put.values],
    );
    return true;
  }

  async close(): Promise<void> {}

  /** Loads every document and stream history applying these events will ask for, so the synchronous handlers can run. */
  readonly #committedStream = (streamId: string, toVersion: number) =>
    this.#backend.read(streamId, { from: 1, to: toVersion, direction: 'forward' });

  async #preload(
    client: pg.PoolClient,
    name: string,
    generation: number,
    events: EventEnvelope[],
    applier: Applier,
    readStream: (streamId: string, toVersion: number) => Promise<EventEnvelope[]>,
  ): Promise<DocView> {
    const keys = new Set<string>();
    for (const event of events) {
      const key = applier.keyOf(event);
      if (key !== undefined) keys.add(key);
    }
    const histories = new Map<string, EventEnvelope[]>();
    for (const marker of applier.rollbacks(events)) {
      const history = await readStream(marker.streamId, marker.version);
      histories.set(`${marker.streamId}\u0000${marker.version}`, history);
      for (const event of history) {
        const key = applier.keyOf(event);
        if (key !== undefined) keys.add(key);
      }
    }
    const docs = new Map<string, StoredDoc>();
    if (keys.size > 0) {
      const { rows } = await client.query<{ key: string; stream_id: string; doc: string }>(
        `SELECT key, stream_id, doc::text AS doc FROM ${this.#s}.projection_docs WHERE projection = $1 AND generation = $2 AND key = ANY ($3)`,
        [name, generation, [...keys]],
      );
      for (const row of rows) docs.set(row.key, { streamId: row.stream_id, json: row.doc });
    }
    return {
      get: (key) => {
        if (!keys.has(key)) throw new Error(`internal: document "${key}" was not preloaded`);
        return docs.get(key);
      },
      history: (streamId, toVersion) => {
        const found = histories.get(`${streamId}\u0000${toVersion}`);
        if (!found) throw new Error(`internal: history of "${streamId}" was not preloaded`);
        return found;
      },
    };
  }

  async #write(client: pg.PoolClient, name: string, generation: number, changes: Changeset): Promise<void> {
    if (changes.wiped.size > 0) {
      await client.query(`DELETE FROM ${this.#s}.projection_docs WHERE projection = $1 AND generation = $2 AND stream_id = ANY ($3)`, [
        name,
        generation,
        [...changes.wiped],
      ]);
    }
    const { gone, keys, streams, docs } = split(changes);
    if (gone.length > 0) {
      await client.query(`DELETE FROM ${this.#s}.projection_docs WHERE projection = $1 AND generation = $2 AND key = ANY ($3)`, [
        name,
        generation,
        gone,
      ]);
    }
    if (keys.length > 0) {
      await client.query(
        `INSERT INTO ${this.#s}.projection_docs (projection, generation, key, stream_id, doc)
         SELECT $1, $2, u.key, u.stream_id, u.doc::jsonb FROM unnest($3::text[], $4::text[], $5::text[]) u(key, stream_id, doc)
         ON CONFLICT (projection, generation, key) DO UPDATE SET stream_id = EXCLUDED.stream_id, doc = EXCLUDED.doc`,
        [name, generation, keys, streams, docs],
      );
    }
  }

  async #drop(client: pg.PoolClient, name: string, generation: number): Promise<void> {
    await client.query(`DELETE FROM ${this.#s}.projection_docs WHERE projection = $1 AND generation = $2`, [name, generation]);
  }

  async #lock(client: pg.PoolClient, name: string): Promise<ProjectionRecord | undefined> {
    const { rows } = await client.query<RecordRow>(`SELECT * FROM ${this.#s}.projections WHERE name = $1 FOR UPDATE`, [name]);
    return rows[0] && fromRow(rows[0]);
  }

  async #put(client: pg.PoolClient, r: ProjectionRecord): Promise<void> {
    const { text, values } = putStatement(this.#s, r, 0);
    await client.query(text, values);
  }

  async #transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }
}

/** A changeset's documents to delete (by key) and to write, as the arrays the statements unnest. */
function split(changes: Changeset): { gone: string[]; keys: string[]; streams: string[]; docs: string[] } {
  const out = { gone: [] as string[], keys: [] as string[], streams: [] as string[], docs: [] as string[] };
  for (const [key, doc] of changes.docs) {
    if (doc === null) out.gone.push(key);
    else {
      out.keys.push(key);
      out.streams.push(doc.streamId);
      out.docs.push(doc.json);
    }
  }
  return out;
}

/** The registry row's update, its parameters numbered after `offset` others. */
function putStatement(s: string, r: ProjectionRecord, offset: number): { text: string; values: unknown[] } {
  const p = (n: number) => `$${offset + n}`;
  return {
    text: `UPDATE ${s}.projections SET version = ${p(2)}, generation = ${p(3)}, position = ${p(4)}, last_event_at = ${p(5)}, error = ${p(6)},
       error_position = ${p(7)}, rebuild_generation = ${p(8)}, rebuild_version = ${p(9)}, rebuild_position = ${p(10)},
       rebuild_last_event_at = ${p(11)}, updated_at = ${p(12)}
     WHERE name = ${p(1)}`,
    values: [
      r.name,
      r.version,
      r.generation,
      r.position,
      r.lastEventAt,
      r.error,
      r.errorPosition,
      r.rebuild?.generation ?? null,
      r.rebuild?.version ?? null,
      r.rebuild?.position ?? null,
      r.rebuild?.lastEventAt ?? null,
      r.updatedAt,
    ],
  };
}

/** A JSON-typed equality, as query.ts defines it. */
function pgEquals(field: string, value: Scalar, arg: (v: unknown) => string): string {
  if (value === null) return `jsonb_typeof(d.doc -> ${field}) = 'null'`;
  if (typeof value === 'number')
    return `jsonb_typeof(d.doc -> ${field}) = 'number' AND (d.doc ->> ${field})::numeric = ${arg(value)}::numeric`;
  return `d.doc -> ${field} = ${arg(JSON.stringify(value))}::jsonb`;
}

function fromRow(row: RecordRow): ProjectionRecord {
  return {
    name: row.name,
    version: row.version,
    generation: row.generation,
    position: Number(row.position),
    lastEventAt: row.last_event_at,
    error: row.error,
    errorPosition: row.error_position === null ? null : Number(row.error_position),
    rebuild:
      row.rebuild_generation === null
        ? null
        : {
            generation: row.rebuild_generation,
            version: row.rebuild_version as number,
            position: Number(row.rebuild_position),
            lastEventAt: row.rebuild_last_event_at,
          },
    updatedAt: row.updated_at,
  };
}

const now = () => new Date().toISOString();
