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

export async function withStore<T>(options: GlobalOptions, fn: (store: EventStore) => Promise<T>): Promise<T> {
  const store = await openStore(storeUrl(options));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
