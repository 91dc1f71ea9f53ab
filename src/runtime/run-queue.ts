import { StoreConfigError } from '../events/errors.js';
import { storageBackendOf } from '../store/event-store.js';
import type { RunQueue } from '../store/run-queue.js';
import type { EventStore } from '../store/types.js';

export { MemoryRunQueue } from '../store/memory/run-queue.js';
export type { ClaimedRun, QueueEntry, RunQueue, RunRequest } from '../store/run-queue.js';

interface Shared {
  queue: Promise<RunQueue>;
  refs: number;
}

const shared = new WeakMap<EventStore, Shared>();

/**
 * The run queue kept beside the store's log (each storage backend implements
 * it: see store/run-queue.ts). Handles on one store share one queue (one
 * LISTEN connection); closing a handle closes the queue only when it was the last.
 */
export async function openRunQueue(store: EventStore): Promise<RunQueue> {
  let entry = shared.get(store);
  if (!entry) {
    const created: Shared = { queue: createQueue(store), refs: 0 };
    entry = created;
    shared.set(store, created);
    created.queue.catch(() => {
      if (shared.get(store) === created) shared.delete(store);
    });
  }
  const own = entry;
  const queue = await own.queue;
  own.refs++;
  let closed = false;
  return {
    enqueue: (...a) => queue.enqueue(...a),
    claim: (...a) => queue.claim(...a),
    renew: (...a) => queue.renew(...a),
    release: (...a) => queue.release(...a),
    list: () => queue.list(),
    onWake: (l) => queue.onWake(l),
    close: async () => {
      if (closed) return;
      closed = true;
      if (--own.refs > 0) return;
      if (shared.get(store) === own) shared.delete(store);
      await queue.close();
    },
  };
}

async function createQueue(store: EventStore): Promise<RunQueue> {
  const backend = storageBackendOf(store);
  if (!backend) {
    throw new StoreConfigError(
      `the ${store.backend} store has no run queue`,
      'workers need a memory, SQLite or PostgreSQL store opened with openStore()',
    );
  }
  return backend.openRunQueue();
}
