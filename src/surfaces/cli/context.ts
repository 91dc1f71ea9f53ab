import { accessSync, constants, existsSync } from 'node:fs';
import { StoreConfigError } from '../../events/errors.js';
import { openStore } from '../../store/open.js';
import type { EventStore } from '../../store/types.js';

export const DEFAULT_DB = 'sqlite:./rewind.db';

export interface GlobalOptions {
  db?: string;
  json?: boolean;
}

/** The store named by --db, else REWIND_DB, else ./rewind.db. A bare path means SQLite. */
export function storeUrl(options: GlobalOptions): string {
  const url = options.db ?? process.env.REWIND_DB ?? DEFAULT_DB;
  return /^[a-z]+:/i.test(url) ? url : `sqlite:${url}`;
}

/**
 * How a command opens the store. 'read': the command only reads, so a SQLite
 * file is opened read-only (an archived audit copy is inspected without a byte
 * of it changing, and a file the user may not write can be read). 'write'
 * (default): opened as usual, created when missing.
 */
export type Access = 'read' | 'write';

export async function withStore<T>(options: GlobalOptions, fn: (store: EventStore) => Promise<T>, access: Access = 'write'): Promise<T> {
  const url = storeUrl(options);
  const store = await openStore(url, access === 'read' && url.startsWith('sqlite:') ? { readOnly: true } : {});
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The file a sqlite: URL names, or undefined for other stores and private in-memory databases. */
function sqliteFile(options: GlobalOptions): string | undefined {
  const url = storeUrl(options);
  if (!url.startsWith('sqlite:')) return undefined;
  const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  return path === ':memory:' ? undefined : path;
}

/**
 * For a command that inspects a log but keeps read models beside it (so opens
 * it writable): a SQLite file that does not exist is a typo, not an empty
 * log, and is not created.
 */
export function requireExistingLog(options: GlobalOptions): void {
  const path = sqliteFile(options);
  if (path !== undefined && !existsSync(path))
    throw new StoreConfigError(
      `${path} does not exist`,
      'name the file your runs were written to (--db or REWIND_DB); `rewind demo` writes one',
    );
}

/** A SQLite file that exists and that this process may not write; other stores count as writable. */
export function isReadOnlyFile(options: GlobalOptions): boolean {
  const path = sqliteFile(options);
  if (path === undefined || !existsSync(path)) return false;
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch {
    return true;
  }
}
