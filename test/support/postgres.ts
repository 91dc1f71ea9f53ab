import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { type OpenStoreOptions, openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';

/** The server of this test run (see postgres-global-setup.ts). */
export function databaseUrl(): string {
  const url = inject('databaseUrl');
  if (!url) throw new Error('no databaseUrl: is test/support/postgres-global-setup.ts listed in globalSetup?');
  return url;
}

/** A fresh schema name, so tests never see each other's events; dropped after the run on a server given by DATABASE_URL. */
export function uniqueSchema(): string {
  return `${inject('schemaPrefix')}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A store on its own new schema. Pass `schema` to open a second store on the same one. */
export async function openTestPostgresStore(options: OpenStoreOptions = {}): Promise<EventStore> {
  return openStore(databaseUrl(), { schema: uniqueSchema(), ...options });
}
