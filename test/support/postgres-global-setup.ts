import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/testing/embedded-postgres.js';
import { TEST_WORKERS } from './workers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** One server per test worker (see databaseUrl() in postgres.ts), or DATABASE_URL for all. */
    databaseUrls: string[];
    /** Every schema a test creates starts with this, so teardown can drop exactly this run's. */
    schemaPrefix: string;
  }
}

/**
 * PostgreSQL for the run: DATABASE_URL when set, otherwise one throwaway
 * embedded server per test worker, on free ports, removed again in teardown.
 * A server of its own keeps each worker's files apart: the log's readers stop
 * below the oldest transaction in flight anywhere on the server, so a test
 * holding one open would hold back the readers of the tests beside it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const prefix = `rw_test_${randomBytes(4).toString('hex')}_`;
  project.provide('schemaPrefix', prefix);
  const given = process.env.DATABASE_URL;
  if (given) {
    project.provide('databaseUrls', [given]);
    return () => dropSchemas(given, prefix);
  }
  const started = await Promise.allSettled(Array.from({ length: TEST_WORKERS }, () => startOne()));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  project.provide(
    'databaseUrls',
    servers.map((s) => s.url),
  );
  return stopAll;
}

/** Another process may take the free port before the server binds it: try again on another. */
async function startOne(): Promise<{ url: string; stop: () => Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEmbeddedPostgres({ disposable: true });
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

/** On a server we do not own, leave nothing behind but other runs' schemas. */
async function dropSchemas(url: string, prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)', [
      prefix,
    ]);
    for (const { name } of rows) await client.query(`DROP SCHEMA "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}
