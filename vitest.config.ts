import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // One PostgreSQL server for the whole run (or DATABASE_URL when set).
    globalSetup: ['test/support/postgres-global-setup.ts'],
  },
});
