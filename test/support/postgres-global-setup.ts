import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/testing/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** Every schema a test creates starts with this, so teardown can drop exactly this run's. */
    schemaPrefix: string;
  }
}

/**
 * One PostgreSQL server for the whole run: DATABASE_URL when set, otherwise a
 * throwaway embedded server on a free port, removed again in teardown.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const prefix = `rw_test_${randomBytes(4).toString('hex')}_`;
  project.provide('schemaPrefix', prefix);
  const given = process.env.DATABASE_URL;
  if (given) {
    project.provide('databaseUrl', given);
    return () => dropSchemas(given, prefix);
  }

  // Another process may take the free port before the server binds it: try again on another.
  for (let attempt = 1; ; attempt++) {
    try {
      const { url, stop } = await startEmbeddedPostgres({ disposable: true });
      project.provide('databaseUrl', url);
      return stop;
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
