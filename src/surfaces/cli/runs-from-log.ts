import { effectiveHistory } from '../../projections/effective-history.js';
import { runStreamId } from '../../runtime/index.js';
import { type RunDoc, runsProjection } from '../../runtime/read-models.js';
import type { EventStore } from '../../store/types.js';

/**
 * The runs read model computed from the log, for a store nothing may be written
 * to (a read-only SQLite file): each listed run's document is the projection's
 * fold over its stream's effective history, which is what the stored model
 * holds once caught up (src/projections/README.md). Reads those streams whole.
 */
export async function runsFromLog(store: EventStore, runIds: readonly string[]): Promise<RunDoc[]> {
  const docs: RunDoc[] = [];
  for (const runId of runIds) {
    let doc: RunDoc | undefined;
    for (const event of effectiveHistory(await store.read(runStreamId(runId)), { keepMarkers: true })) {
      if (runsProjection.key(event) !== undefined) doc = runsProjection.evolve(doc && structuredClone(doc), event);
    }
    if (doc) docs.push(doc);
  }
  return docs;
}
