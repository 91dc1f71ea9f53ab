import type Database from 'better-sqlite3';
import { StoreReadOnlyError } from '../../events/errors.js';
import { prefixRange } from '../prefix-range.js';
import {
  type IndexableEvent,
  type IndexedRun,
  RUN_STREAM_PREFIX,
  type RunCount,
  type RunIndexBackend,
  type RunIndexChange,
  type RunIndexQuery,
  type RunIndexRow,
  type RunIndexState,
  type RunStreamEnds,
} from '../run-index.js';

// The runs index in the log's SQLite file (store/run-index.ts). Its tables
// are created at every writable open, as the leases' are: a file written by
// an earlier build gains them and is marked for a rebuild when it holds runs.
// Each index below serves a filter (none, status, workflow) in an order (id,
// start time) with a seek and the page's rows; both filters at once take the
// index of either and test the other (docs/runs-index.md says why not more).
// Rows change only when a run starts or its status changes.

export const RUN_INDEX_TABLES = `
  CREATE TABLE IF NOT EXISTS runs (
    run_id           TEXT    PRIMARY KEY,
    workflow         TEXT    NOT NULL,
    workflow_version TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    waiting_for      TEXT,
    started_at       TEXT    NOT NULL,
    changed_at       TEXT    NOT NULL,
    -- The stream version the status was read at: a write older than the row's is dropped.
    version          INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, run_id);
  CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow, run_id);
  CREATE INDEX IF NOT EXISTS runs_by_start ON runs (started_at, run_id);
  CREATE INDEX IF NOT EXISTS runs_by_status_start ON runs (status, started_at, run_id);
  CREATE INDEX IF NOT EXISTS runs_by_workflow_start ON runs (workflow, started_at, run_id);
  CREATE TABLE IF NOT EXISTS run_index_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    built INTEGER NOT NULL
  ) STRICT;
  -- A new file has no runs: built. A file of an earlier build with runs waits for its rebuild.
  INSERT OR IGNORE INTO run_index_state (id, built)
    SELECT 1, NOT EXISTS (SELECT 1 FROM streams WHERE stream_id >= '${RUN_STREAM_PREFIX}' AND stream_id < 'run.');
`;

const ROW = `run_id AS runId, workflow, workflow_version AS workflowVersion, status, waiting_for AS waitingFor, started_at AS startedAt,
  changed_at AS changedAt, version`;

const ORDERS = {
  id: { after: 'run_id > @runId', by: 'run_id' },
  newest: { after: '(started_at, run_id) < (@startedAt, @runId)', by: 'started_at DESC, run_id DESC' },
  oldest: { after: '(started_at, run_id) > (@startedAt, @runId)', by: 'started_at, run_id' },
} as const;

type PageParams = { status?: string; workflow?: string; low?: string; high?: string; runId?: string; startedAt?: string; limit: number };

export class SqliteRunIndex implements RunIndexBackend {
  readonly #db: Database.Database;
  readonly #pages = new Map<string, Database.Statement<[PageParams], IndexedRun>>();
  #write: { start: Database.Statement; change: Database.Statement } | undefined;

  /** A run's whole row, unless the row holds a newer version: what a run's start writes, and the rebuild. */
  #upsert(): Database.Statement {
    return this.#db.prepare(
      `INSERT INTO runs (run_id, workflow, workflow_version, status, waiting_for, started_at, changed_at, version)
       VALUES (@runId, @workflow, @workflowVersion, @status, @waitingFor, @startedAt, @changedAt, @version)
       ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, waiting_for = excluded.waiting_for,
         changed_at = excluded.changed_at, version = excluded.version
       WHERE excluded.version > runs.version`,
    );
  }

  constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Inside the append's transaction, after its events: the row's change, if the run starts or its status moves. */
  writeSync(streamId: string, change: RunIndexChange, version: number): void {
    this.#write ??= {
      start: this.#upsert(),
      change: this.#db.prepare(
        `UPDATE runs SET status = @status, waiting_for = @waitingFor, changed_at = @at, version = @version
         WHERE run_id = @runId AND version < @version AND (status <> @status OR waiting_for IS NOT @waitingFor)`,
      ),
    };
    const runId = streamId.slice(RUN_STREAM_PREFIX.length);
    const { status, waitingFor, at, start } = change;
    if (start) this.#write.start.run({ ...start, runId, status, waitingFor, changedAt: at, version });
    else this.#write.change.run({ runId, status, waitingFor, at, version });
  }

  async state(): Promise<RunIndexState> {
    const exists = this.#db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'run_index_state'").get();
    if (!exists) return 'pending';
    return this.#db.prepare('SELECT built FROM run_index_state WHERE id = 1').pluck().get() === 1 ? 'built' : 'pending';
  }

  async page(query: RunIndexQuery): Promise<IndexedRun[]> {
    const [low, high] = prefixRange(query.idPrefix);
    const key = `${query.order}|${query.status !== undefined}|${query.workflow !== undefined}|${query.after !== undefined}|${low !== null}|${high !== null}`;
    let statement = this.#pages.get(key);
    if (!statement) {
      const order = ORDERS[query.order];
      const where = [
        query.status !== undefined ? 'status = @status' : '',
        query.workflow !== undefined ? 'workflow = @workflow' : '',
        query.after !== undefined ? order.after : '',
        low !== null ? 'run_id >= @low' : '',
        high !== null ? 'run_id < @high' : '',
      ].filter(Boolean);
      // The page first, from its index; then each run's head, one seek in the events' (stream_id, version) index.
      statement = this.#db.prepare<[PageParams], IndexedRun>(
        `SELECT r.*, e.version AS headVersion, e.recorded_at AS updatedAt FROM (
           SELECT ${ROW} FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order.by} LIMIT @limit
         ) r JOIN events e ON e.position =
           (SELECT position FROM events WHERE stream_id = '${RUN_STREAM_PREFIX}' || r.runId ORDER BY version DESC LIMIT 1)
         ORDER BY ${order.by.replaceAll('started_at', 'r.startedAt').replaceAll('run_id', 'r.runId')}`,
      );
      this.#pages.set(key, statement);
    }
    const params: PageParams = { limit: query.limit };
    if (query.status !== undefined) params.status = query.status;
    if (query.workflow !== undefined) params.workflow = query.workflow;
    if (low !== null) params.low = low;
    if (high !== null) params.high = high;
    if (query.after) {
      params.runId = query.after.runId;
      if (query.order !== 'id') params.startedAt = query.after.startedAt ?? '';
    }
    return statement.all(params);
  }

  async counts(): Promise<RunCount[]> {
    return this.#db
      .prepare<[], RunCount>('SELECT workflow, status, count(*) AS runs FROM runs GROUP BY workflow, status ORDER BY workflow, status')
      .all();
  }

  async runStreams(): Promise<number> {
    return this.#db
      .prepare(`SELECT count(*) FROM streams WHERE stream_id >= '${RUN_STREAM_PREFIX}' AND stream_id < 'run.'`)
      .pluck()
      .get() as number;
  }

  async rebuildStep(
    after: string | undefined,
    limit: number,
    summarise: (ends: RunStreamEnds) => RunIndexRow | undefined,
  ): Promise<string | undefined> {
    if (this.#db.readonly) throw new StoreReadOnlyError('index the runs', 'the log is open read-only');
    const streams = this.#db
      .prepare<[string, number], string>(
        `SELECT stream_id FROM streams WHERE stream_id > ? AND stream_id < 'run.' ORDER BY stream_id LIMIT ?`,
      )
      .pluck();
    const end = (direction: 'ASC' | 'DESC') =>
      this.#db.prepare<[string], Raw>(
        `SELECT type, data, recorded_at AS recordedAt, version FROM events WHERE stream_id = ? ORDER BY version ${direction} LIMIT 1`,
      );
    const first = end('ASC');
    const last = end('DESC');
    const put = this.#upsert();
    // One write transaction: no append to these streams lands between their read and their row.
    return this.#db
      .transaction(() => {
        const ids = streams.all(after ?? RUN_STREAM_PREFIX, limit);
        for (const streamId of ids) {
          const a = first.get(streamId);
          const z = last.get(streamId);
          if (!a || !z) continue;
          const row = summarise({ streamId, first: parsed(a), last: parsed(z), version: z.version });
          if (row) put.run({ ...row, runId: streamId.slice(RUN_STREAM_PREFIX.length) });
        }
        return ids.at(-1);
      })
      .immediate();
  }

  async markBuilt(): Promise<void> {
    this.#db.prepare('UPDATE run_index_state SET built = 1 WHERE id = 1').run();
  }
}

type Raw = { type: string; data: string; recordedAt: string; version: number };

/** Data that does not parse leaves the run out of the index (verify reports the row); it never stops the rebuild. */
function parsed(raw: Raw): IndexableEvent {
  let data: unknown = null;
  try {
    data = JSON.parse(raw.data);
  } catch {
    data = null;
  }
  return { type: raw.type, data, recordedAt: raw.recordedAt };
}
