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
    until     INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
`;

export interface LeaseStatements {
  get: { get(streamId: string): StreamLease | undefined };
  put: { run(lease: StreamLease): unknown };
  renew: { run(until: number, streamId: string, owner: string): { changes: number } };
  release: { run(streamId: string, owner: string, epoch: number): unknown };
}

export function leaseStatements(db: Database.Database): LeaseStatements {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'stream_leases'").pluck().get();
  if (!exists) {
    const none = { run: () => ({ changes: 0 }) };
    return { get: { get: () => undefined }, put: none, renew: none, release: none };
  }
  return {
    get: db.prepare<[string], StreamLease>('SELECT stream_id AS streamId, owner, epoch, until FROM stream_leases WHERE stream_id = ?'),
    put: db.prepare(
      `INSERT INTO stream_leases (stream_id, owner, epoch, until) VALUES (@streamId, @owner, @epoch, @until)
       ON CONFLICT (stream_id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, until = excluded.until`,
    ),
    renew: db.prepare('UPDATE stream_leases SET until = ? WHERE stream_id = ? AND owner = ? AND until <> 0'),
    release: db.prepare('UPDATE stream_leases SET until = 0 WHERE stream_id = ? AND owner = ? AND epoch = ?'),
  };
}
