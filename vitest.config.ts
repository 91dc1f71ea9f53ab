import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // One PostgreSQL server for the whole run (or DATABASE_URL when set).
    // REWIND_SKIP_POSTGRES=1 leaves it out while working on other layers.
    globalSetup: process.env.REWIND_SKIP_POSTGRES === '1' ? [] : ['test/support/postgres-global-setup.ts'],
  },
});
