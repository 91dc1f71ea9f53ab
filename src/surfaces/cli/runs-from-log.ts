import { effectiveHistory } from '../../projections/effective-history.js';
import { checkQuery, type FindQuery, type FoundDoc, runQuery } from '../../projections/query.js';
import { type RunDoc, runsProjection } from '../../runtime/read-models.js';
import type { EventStore } from '../../store/types.js';

/**
 * The runs read model computed from the log, for a store nothing may be written
 * to (a read-only SQLite file): each run's document is the projection's fold over
 * the stream's effective history, which is what the stored model holds once
 * caught up (src/projections/README.md), queried with the stored model's own
 * semantics. Reads every run stream whole.
 */
export async function runsFromLog(store: EventStore, query: FindQuery): Promise<RunDoc[]> {
  const found: FoundDoc<RunDoc>[] = [];
  for (let after: string | undefined; ; ) {
    const page = await store.listStreams({ prefix: runsProjection.streamPrefix, limit: 1000, ...(after ? { after } : {}) });
    for (const { streamId } of page) {
      let doc: RunDoc | undefined;
      for (const event of effectiveHistory(await store.read(streamId), { keepMarkers: true })) {
        if (runsProjection.key(event) !== undefined) doc = runsProjection.evolve(doc && structuredClone(doc), event);
      }
      if (doc) found.push({ key: streamId, streamId, doc });
    }
    if (page.length < 1000) break;
    after = page.at(-1)?.streamId;
  }
  return runQuery(found, checkQuery(query)).map((f) => f.doc as RunDoc);
}
