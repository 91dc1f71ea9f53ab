import { accessSync, constants, existsSync } from 'node:fs';
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

/** A SQLite file that exists and that this process may not write; other stores count as writable. */
export function isReadOnlyFile(options: GlobalOptions): boolean {
  const url = storeUrl(options);
  if (!url.startsWith('sqlite:')) return false;
  const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (path === ':memory:' || !existsSync(path)) return false;
  try {
    accessSync(path, constants.W_OK);
    return false;
  } catch {
    return true;
  }
}
