import type { ProjectionHost, StorageBackend } from '../../store/types.js';
import { MemoryPrimitives } from './memory.js';
import { PostgresReadModelStore } from './postgres.js';
import { SqlitePrimitives } from './sqlite.js';
import { SyncReadModelStore } from './sync-store.js';
import type { ReadModelStore } from './types.js';

// One read-model store per backend, shared by every projections object opened on it.
const opened = new WeakMap<ProjectionHost, ReadModelStore>();

export function readModelStoreFor(backend: StorageBackend & { projectionHost: ProjectionHost }): ReadModelStore {
  const host = backend.projectionHost;
  let found = opened.get(host);
  if (!found) {
    if (host.kind === 'postgres') found = new PostgresReadModelStore(host, backend);
    else if (host.kind === 'memory') found = new SyncReadModelStore(new MemoryPrimitives(), host);
    else found = new SyncReadModelStore(new SqlitePrimitives(host.database as NonNullable<typeof host.database>), host);
    opened.set(host, found);
  }
  return found;
}
