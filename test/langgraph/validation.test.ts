import { validate } from '@langchain/langgraph-checkpoint-validation';
import * as vitest from 'vitest';
import type { EventStore } from '../../src/store/types.js';
import { RewindCheckpointSaver } from '../../src/surfaces/langgraph/index.js';
import { type Backend, memoryBackend, postgresBackend, sqliteBackend, uniquePrefix, withPostgres } from './helpers.js';

// The suite calls describe/it/expect/… as globals (it is written for vitest's
// `globals: true`). Providing them here lets it run under the project config.
Object.assign(globalThis, {
  describe: vitest.describe,
  it: vitest.it,
  test: vitest.test,
  expect: vitest.expect,
  beforeAll: vitest.beforeAll,
  afterAll: vitest.afterAll,
  beforeEach: vitest.beforeEach,
  afterEach: vitest.afterEach,
  vi: vitest.vi,
});

function suite(backend: () => Backend | Promise<Backend>): void {
  let b: Backend;
  const stores = new WeakMap<RewindCheckpointSaver, EventStore>();
  validate<RewindCheckpointSaver>({
    // Not the name of an official saver: the suite then runs every test,
    // including "only store channel_values that have changed".
    checkpointerName: `rewind-checkpoint-saver (${backend.name})`,
    async beforeAll() {
      b = await backend();
    },
    beforeAllTimeout: 60_000,
    async createCheckpointer() {
      const store = await b.open();
      const saver = new RewindCheckpointSaver(store, { prefix: uniquePrefix() });
      stores.set(saver, store);
      return saver;
    },
    async destroyCheckpointer(saver) {
      await stores.get(saver)?.close();
    },
    async afterAll() {
      await b.cleanup();
    },
  });
}

Object.defineProperty(memoryBackend, 'name', { value: 'memory' });
suite(memoryBackend);
Object.defineProperty(sqliteBackend, 'name', { value: 'sqlite' });
suite(sqliteBackend);
if (withPostgres) {
  Object.defineProperty(postgresBackend, 'name', { value: 'postgres' });
  suite(postgresBackend);
}
