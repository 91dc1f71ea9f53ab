import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer.ts';
import { TEST_WORKERS } from './test/support/workers.ts';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

const ALONE = [
  'test/store/postgres.test.ts',
  'test/store/postgres-announcer.test.ts',
  'test/store/postgres-group-commit.test.ts',
  'test/store/tamper.test.ts',
  'test/projections/traffic.test.ts',
  'test/runtime/worker-stop.test.ts',
];

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
    // and the debugger run the compiled code) and one PostgreSQL server for the whole run (or DATABASE_URL when
    // set), side by side. REWIND_SKIP_POSTGRES=1 leaves PostgreSQL out while working on other layers.
    globalSetup: ['test/support/global-setup.ts'],
    // Three files at a time (test/support/workers.ts): one at a time, the default on two cores, left one idle.
    maxWorkers: TEST_WORKERS,
    // The longest files first (test/support/sequencer.ts), so no worker is left with one at the end.
    sequence: { sequencer: LongestFirst },
    projects: [
      { extends: true, test: { name: 'rewind', include: ['test/**/*.test.ts'], exclude: ALONE } },
      {
        // Files that time what they measure, or hold a PostgreSQL transaction open (which holds back every
        // reader of the server): run after the others, one at a time, with the machine to themselves.
        extends: true,
        test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
      {
        // The runtime's tests again on a real SQLite file per test (see test/runtime/helpers.ts).
        extends: true,
        test: {
          name: 'runtime on sqlite',
          include: ['test/runtime/**/*.test.ts', 'test/examples/**/*.test.ts'],
          // These open their own stores (SQLite and PostgreSQL) already.
          exclude: [
            'test/runtime/workers.test.ts',
            'test/runtime/waits-workers.test.ts',
            'test/runtime/worker-stop.test.ts',
            'test/runtime/decide.test.ts',
            'test/examples/langgraph-agent.test.ts',
          ],
          env: { REWIND_RUNTIME_STORE: 'sqlite' },
        },
      },
    ],
  },
});
