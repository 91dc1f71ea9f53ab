import { accessSync, constants, existsSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

// A database in WAL mode has two files beside it while it is open: `-wal`, the commits not yet copied into
// the database, and `-shm`, the index of that log every connection shares. The last connection that may write
// removes both when it closes; a read-only connection cannot, so reading a file no one else had open would
// leave them behind, empty, beside a file the reader promised not to touch.

const SIDECARS = ['-wal', '-shm'] as const;

/** The files SQLite keeps beside `path` that are not there now: those opening it may create. */
export function missingSidecars(path: string): string[] {
  return SIDECARS.map((suffix) => `${path}${suffix}`).filter((file) => !existsSync(file));
}

/**
 * Once a read-only connection to `path` has closed: removes the sidecars it created (`created`, found missing
 * before it opened) unless another connection uses them. Where this process may write the file, SQLite decides:
 * a connection that may write opens it and closes at once, and removes them only if it is the last one (the
 * database itself is left as it is: there is nothing to copy into it). Where it may not, they are removed while
 * the -wal is still empty, so nothing anyone wrote is lost. Best effort: what cannot be removed stays, as SQLite
 * would have left it.
 */
export function removeCreatedSidecars(path: string, created: readonly string[]): void {
  const left = created.filter((file) => existsSync(file));
  if (left.length === 0) return;
  try {
    if (mayWrite(path) && mayWrite(dirname(path))) {
      const db = new Database(path, { fileMustExist: true });
      try {
        // A read opens the WAL, so that closing this connection tidies it up.
        db.pragma('user_version', { simple: true });
      } finally {
        db.close();
      }
      return;
    }
    const wal = `${path}-wal`;
    if (existsSync(wal) && statSync(wal).size > 0) return;
    for (const file of left) rmSync(file, { force: true });
  } catch {
    // Left as SQLite left them.
  }
}

function mayWrite(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
