import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // The examples import the package by its name; under test that name means the sources (as tsconfig.json's paths do for tsc and tsx).
    alias: [
      { find: /^rewind-runtime$/, replacement: src('index.ts') },
      { find: /^rewind-runtime\/testing$/, replacement: src('testing/index.ts') },
      { find: /^rewind-runtime\/testing\/conformance$/, replacement: src('testing/conformance.ts') },
      { find: /^rewind-runtime\/(ai-sdk|http|langgraph|mcp|otel)$/, replacement: src('surfaces/$1/index.ts') },
    ],
  },
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // dist/ rebuilt when older than its sources (tests of the CLI as installed, the package, the README's snippets
    // and the debugger run the compiled code); one PostgreSQL server for the whole run (or DATABASE_URL when set).
    // REWIND_SKIP_POSTGRES=1 leaves PostgreSQL out while working on other layers.
    globalSetup: [
      'test/support/build-global-setup.ts',
      ...(process.env.REWIND_SKIP_POSTGRES === '1' ? [] : ['test/support/postgres-global-setup.ts']),
    ],
    projects: [
      { extends: true, test: { name: 'rewind', include: ['test/**/*.test.ts'] } },
      {
        // The runtime's tests again on a real SQLite file per test (see test/runtime/helpers.ts).
        extends: true,
        test: {
          name: 'runtime on sqlite',
          include: ['test/runtime/**/*.test.ts', 'test/examples/**/*.test.ts'],
          // These open their own stores (SQLite and PostgreSQL) already.
          exclude: ['test/runtime/workers.test.ts', 'test/runtime/waits-workers.test.ts', 'test/runtime/worker-stop.test.ts', 'test/runtime/decide.test.ts', 'test/examples/langgraph-agent.test.ts'],
          env: { REWIND_RUNTIME_STORE: 'sqlite' },
        },
      },
    ],
  },
});
