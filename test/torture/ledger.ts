import Database from 'better-sqlite3';

export interface LedgerEntry {
  /** Order of first application. */
  n: number;
  kind: 'do' | 'undo' | 'violation';
  key: string;
  step: string;
  /** How many calls it took: more than 1 means the provider deduplicated a repeat. */
  calls: number;
  note: string | null;
}

/**
 * The external world of the crash tests: a payment provider's ledger in its
 * own SQLite file, outside the event log. Like a real provider it
 * deduplicates by idempotency key: a second `do` with a key returns the first
 * result and changes nothing, and one with the same key but other
 * parameters (`body`) is refused, as a payment provider refuses it; an
 * `undo` of a key that was never done is refused too. Refusals are written
 * down as violations. Every call is committed before it
 * returns, so it survives a SIGKILL of the process that made it.
 */
export class Ledger {
  readonly #db: Database.Database;
  /** Changes made by this process: a crash test counts the states a kill can leave behind. */
  writes = 0;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('busy_timeout = 5000');
    // A process crash (the only crash these tests make) loses nothing committed in WAL mode at NORMAL.
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS entries (
      n INTEGER PRIMARY KEY AUTOINCREMENT,
      kind TEXT NOT NULL,          -- 'do' | 'undo' | 'violation'
      key TEXT NOT NULL,
      step TEXT NOT NULL,
      calls INTEGER NOT NULL DEFAULT 1,
      note TEXT,
      body TEXT NOT NULL DEFAULT ''
    );
    CREATE UNIQUE INDEX IF NOT EXISTS entries_effect ON entries (kind, key) WHERE kind <> 'violation';`);
  }

  /** Applies the effect of `step` under `key` once; a repeat returns the first result; the same key with another body is refused. */
  do(key: string, step: string, body = ''): { key: string; step: string } {
    const done = this.#db.prepare(`SELECT body FROM entries WHERE kind = 'do' AND key = ?`).get(key) as { body: string } | undefined;
    if (done && done.body !== body) this.#refuse(key, step, `key reused with other parameters: ${done.body} then ${body}`);
    this.#write('do', key, step, undefined, body);
    return { key, step };
  }

  /** Undoes the effect done under `key`; refused (a violation) when nothing was done under it. */
  undo(key: string, step: string, note?: string): void {
    const done = this.#db.prepare(`SELECT 1 FROM entries WHERE kind = 'do' AND key = ?`).get(key);
    if (!done) this.#refuse(key, step, 'undo without a do');
    this.#write('undo', key, step, note);
  }

  #refuse(key: string, step: string, why: string): never {
    this.#db.prepare(`INSERT INTO entries (kind, key, step, note) VALUES ('violation', ?, ?, ?)`).run(key, step, why);
    this.writes++;
    throw new Error(`provider: ${why} (${key})`);
  }

  #write(kind: 'do' | 'undo', key: string, step: string, note?: string, body = ''): void {
    this.#db
      .prepare(
        `INSERT INTO entries (kind, key, step, note, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, key) WHERE kind <> 'violation' DO UPDATE SET calls = calls + 1`,
      )
      .run(kind, key, step, note ?? null, body);
    this.writes++;
  }

  entries(): LedgerEntry[] {
    return this.#db.prepare('SELECT n, kind, key, step, calls, note FROM entries ORDER BY n').all() as LedgerEntry[];
  }

  close(): void {
    this.#db.close();
  }
}
