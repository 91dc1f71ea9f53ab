import type Database from 'better-sqlite3';
import type { StreamLease } from '../types.js';

/**
 * Stream leases in the log's SQLite file (the rules are store/leases.ts).
 * Times are the writers' Date.now(): every process sharing a SQLite file runs
 * on one machine, so they read one clock. Every writable open creates the
 * table; a file opened read-only without it simply has no leases.
 */
export const LEASES_TABLE = `
  CREATE TABLE IF NOT EXISTS stream_leases (
    stream_id TEXT    PRIMARY KEY,
    owner     TEXT    NOT NULL,
    epoch     INTEGER NOT NULL,
    until     INTEGER NOT NULL,
    -- The holder's process: SQLite's writers share one machine, so a holder whose process is gone is known at once.
    pid       INTEGER NOT NULL DEFAULT 0
  ) STRICT, WITHOUT ROWID;
`;

export interface LeaseStatements {
  get: { get(streamId: string): StreamLease | undefined };
  /** The holder's process id (0: unknown). */
  pid: { get(streamId: string): number | undefined };
  put: { run(lease: StreamLease & { pid: number }): unknown };
  renew: { run(until: number, streamId: string, owner: string): { changes: number } };
  release: { run(streamId: string, owner: string, epoch: number): unknown };
}

export function leaseStatements(db: Database.Database): LeaseStatements {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'stream_leases'").pluck().get();
  if (!exists) {
    const none = { run: () => ({ changes: 0 }) };
    return { get: { get: () => undefined }, pid: { get: () => undefined }, put: none, renew: none, release: none };
  }
  return {
    get: db.prepare<[string], StreamLease>('SELECT stream_id AS streamId, owner, epoch, until FROM stream_leases WHERE stream_id = ?'),
    pid: db.prepare<[string], number>('SELECT pid FROM stream_leases WHERE stream_id = ?').pluck(),
    put: db.prepare(
      `INSERT INTO stream_leases (stream_id, owner, epoch, until, pid) VALUES (@streamId, @owner, @epoch, @until, @pid)
       ON CONFLICT (stream_id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, until = excluded.until, pid = excluded.pid`,
    ),
    renew: db.prepare('UPDATE stream_leases SET until = ? WHERE stream_id = ? AND owner = ? AND until <> 0'),
    release: db.prepare('UPDATE stream_leases SET until = 0 WHERE stream_id = ? AND owner = ? AND epoch = ?'),
  };
}

/** Whether the process that holds a lease is gone: it died, so it renews nothing and writes nothing more. */
export function holderGone(pid: number | undefined): boolean {
  if (!pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: alive, only not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
