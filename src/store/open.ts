import { StoreConfigError } from '../events/errors.js';
import { type EventStoreOptions, Store } from './event-store.js';
import { MemoryBackend } from './memory.js';
import type { EventStore } from './types.js';

export interface OpenStoreOptions extends EventStoreOptions {
  /** SQLite: `synchronous` pragma. 'full' (default) survives power loss; 'normal' survives a process crash. */
  durability?: 'full' | 'normal';
  /** PostgreSQL: connections in the pool (default 10). */
  poolSize?: number;
  /** PostgreSQL: schema holding Rewind's tables (default 'rewind'). */
  schema?: string;
  /** PostgreSQL: give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * SQLite only: open an existing file read-only (an archived copy, another user's file): reads,
   * `verify` and time travel work; nothing is created, migrated or written, and writes are refused
   * with `StoreReadOnlyError`.
   */
  readOnly?: boolean;
}

/**
 * Opens the log named by a URL:
 * - `memory:` a fresh in-memory store;
 * - `sqlite:<path>` (or `sqlite::memory:`) one SQLite file, created on first use;
 * - `postgres://…` / `postgresql://…` a PostgreSQL database, schema created on first use
 *   (`?schema=name` in the URL, or the `schema` option; default `rewind`).
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<EventStore> {
  if (typeof url !== 'string' || url.length === 0) {
    throw new StoreConfigError('openStore needs a URL', "use 'memory:', 'sqlite:./rewind.db' or 'postgres://user@host/db'");
  }
  if (options.readOnly && !url.startsWith('sqlite:')) {
    throw new StoreConfigError(
      'readOnly opens SQLite files only',
      'leave it out for memory: and postgres:// (use a read-only database role there)',
    );
  }
  if (url === 'memory:' || url === 'memory://') return new Store(new MemoryBackend(), options);
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path.length === 0) throw new StoreConfigError(`"${url}" names no file`, "write 'sqlite:./rewind.db' or 'sqlite::memory:'");
    const { SqliteBackend } = await import('./sqlite.js');
    return new Store(SqliteBackend.open(path, options), options);
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // `?schema=name` in the URL picks the schema, so a CLI flag or an env var can carry it.
    const parsed = new URL(url);
    const schema = options.schema ?? parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    const { PostgresBackend } = await import('./postgres.js');
    return new Store(await PostgresBackend.connect(parsed.toString(), { ...options, schema }), options);
  }
  throw new StoreConfigError(`unknown store URL "${url}"`, "use 'memory:', 'sqlite:<path>' or 'postgres://…' (or postgresql://)");
}
