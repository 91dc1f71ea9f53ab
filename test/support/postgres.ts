import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { type OpenStoreOptions, openStore } from '../../src/store/open.js';
import type { EventStore } from '../../src/store/types.js';

/** This test worker's server (see postgres-global-setup.ts): VITEST_POOL_ID tells the workers running at once apart. */
export function databaseUrl(): string {
  const urls = inject('databaseUrls');
  if (!urls?.length) throw new Error('no databaseUrls: is test/support/global-setup.ts listed in globalSetup?');
  const slot = Number(process.env.VITEST_POOL_ID ?? 1);
  return urls[(Math.max(1, slot) - 1) % urls.length] as string;
}

/** A fresh schema name, so tests never see each other's events; dropped after the run on a server given by DATABASE_URL. */
export function uniqueSchema(): string {
  return `${inject('schemaPrefix')}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** A store on its own new schema. Pass `schema` to open a second store on the same one. */
export async function openTestPostgresStore(options: OpenStoreOptions = {}): Promise<EventStore> {
  return openStore(databaseUrl(), { schema: uniqueSchema(), ...options });
}
