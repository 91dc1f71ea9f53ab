import Database from 'better-sqlite3';

export interface Call {
  kind: 'step' | 'compensation';
  key: string;
  attempt: number;
  pid: number;
}

/**
 * The world of the concurrency torture: every call of a step function or a
 * compensation, counted in its own SQLite file. Unlike the crash torture's
 * provider it deduplicates nothing: two calls under one key and attempt are
 * two rows, so an attempt that ran twice (in one process or in two) shows.
 * Each call is committed before the function goes on.
 */
export class CallLedger {
  readonly #db: Database.Database;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('busy_timeout = 10000');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS calls (
      n INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      key TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      pid INTEGER NOT NULL
    )`);
  }

  call(kind: Call['kind'], key: string, attempt: number): void {
    this.#db.prepare('INSERT INTO calls (kind, key, attempt, pid) VALUES (?, ?, ?, ?)').run(kind, key, attempt, process.pid);
  }

  calls(): Call[] {
    return this.#db.prepare('SELECT kind, key, attempt, pid FROM calls ORDER BY n').all() as Call[];
  }

  close(): void {
    this.#db.close();
  }
}
