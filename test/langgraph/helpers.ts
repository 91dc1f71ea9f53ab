import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';

export const withPostgres = process.env.REWIND_SKIP_POSTGRES !== '1';

export interface Backend {
  name: string;
  /** A fresh, empty store. */
  open(): Promise<EventStore>;
  /** A second store on the same data as `store` (another "process"). */
  reopen(store: EventStore): Promise<EventStore>;
  cleanup(): Promise<void>;
}

const files = new WeakMap<EventStore, string>();

export function memoryBackend(): Backend {
  return {
    name: 'memory',
    open: () => openStore('memory:'),
    // The memory backend cannot be shared between instances; the same instance stands in.
    reopen: async (store) => store,
    cleanup: async () => {},
  };
}

export function sqliteBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'rewind-lg-'));
      dirs.push(dir);
      const file = join(dir, 'rewind.db');
      const store = await openStore(`sqlite:${file}`, { durability: 'normal' });
      files.set(store, file);
      return store;
    },
    async reopen(store) {
      const file = files.get(store);
      if (!file) throw new Error('not a store of this backend');
      return openStore(`sqlite:${file}`, { durability: 'normal' });
    },
    async cleanup() {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function postgresBackend(): Promise<Backend> {
  const { databaseUrl, uniqueSchema } = await import('../support/postgres.js');
  const schemas = new WeakMap<EventStore, string>();
  return {
    name: 'postgres',
    async open() {
      const schema = uniqueSchema();
      const store = await openStore(databaseUrl(), { schema, poolSize: 4 });
      schemas.set(store, schema);
      return store;
    },
    async reopen(store) {
      return openStore(databaseUrl(), { schema: schemas.get(store), poolSize: 4 });
    },
    cleanup: async () => {},
  };
}

export function uniquePrefix(): string {
  return `lg${randomBytes(4).toString('hex')}`;
}
