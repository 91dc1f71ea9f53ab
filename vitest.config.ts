import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // One PostgreSQL server for the whole run (or DATABASE_URL when set).
    // REWIND_SKIP_POSTGRES=1 leaves it out while working on other layers.
    globalSetup: process.env.REWIND_SKIP_POSTGRES === '1' ? [] : ['test/support/postgres-global-setup.ts'],
    projects: [
      { extends: true, test: { name: 'rewind', include: ['test/**/*.test.ts'] } },
      {
        // The runtime's tests again on a real SQLite file per test (see test/runtime/helpers.ts).
        extends: true,
        test: {
          name: 'runtime on sqlite',
          include: ['test/runtime/**/*.test.ts', 'test/examples/**/*.test.ts'],
          // These open their own stores (SQLite and PostgreSQL) already.
          exclude: ['test/runtime/workers.test.ts', 'test/runtime/worker-stop.test.ts', 'test/runtime/decide.test.ts', 'test/examples/langgraph-agent.test.ts'],
          env: { REWIND_RUNTIME_STORE: 'sqlite' },
        },
      },
    ],
  },
});
