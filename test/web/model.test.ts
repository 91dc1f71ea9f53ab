// The web debugger's pure model agrees with the runtime it mirrors: the same
// undone marks, effective histories, durations, state diffs and divergences.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTravelDemo } from '../../examples/travel.js';
import { diffRuns, diffState, effectiveEvents, historyOf, runStreamId } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { timelineOf } from '../../src/surfaces/cli/timeline.js';
import { compareRuns, diffJson, type Envelope, effectiveAt, journalStateAt, rowsOf } from '../../src/surfaces/web/app/model.js';

async function demoEvents(runId: string) {
  const store = await openStore('memory:');
  await runTravelDemo(store, { runId });
  const events = await store.read(runStreamId(runId));
  await store.close();
  return events;
}

describe('web model', () => {
  it('marks undone events, markers and durations as the runtime and the CLI do', async () => {
    const events = await demoEvents('m-1');
    const rows = rowsOf(events as unknown as Envelope[]);
    const history = historyOf(events);
    expect(rows.map((r) => [r.event.version, r.status, r.undoneBy])).toEqual(history.events.map((e) => [e.version, e.status, e.undoneBy]));
    expect(rows.map((r) => r.durationMs)).toEqual(timelineOf(events).map((t) => t.durationMs));
    expect(rows.filter((r) => r.status === 'rolled_back')).toHaveLength(17);
  });

  it('computes the effective history at every version as the runtime does', async () => {
    const events = await demoEvents('m-2');
    for (let v = 1; v <= events.length; v++) {
      expect(effectiveAt(events as unknown as Envelope[], v).map((e) => e.id)).toEqual(
        effectiveEvents(events.slice(0, v)).map((e) => e.id),
      );
    }
    // At v13 the first hotel had been chosen and the flight booked; at the end that detour is gone.
    const at13 = journalStateAt(events as unknown as Envelope[], 13) as Record<string, any>;
    expect(at13.steps['book-flight']).toBe('FL-1-book-flight');
    expect(at13.emitted.map((e: { type: string }) => e.type)).toContain('HotelChosen');
    const end = journalStateAt(events as unknown as Envelope[], events.length) as Record<string, any>;
    expect(end.phase).toBe('completed');
    expect(end.steps['book-hotel']).toBe('HT-HarbourInn');
  });

  it('diffs JSON like the runtime diffState', () => {
    const key = (c: { at: string }, op: string) => `${op} ${c.at}`;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4 }), (a, b) => {
        const ours = diffJson(a, b)
          .map((c) => key(c, c.op))
          .sort();
        const d = diffState(a, b);
        const theirs = [
          ...d.added.map((c) => key(c, 'added')),
          ...d.removed.map((c) => key(c, 'removed')),
          ...d.changed.map((c) => key(c, 'changed')),
        ].sort();
        expect(ours).toEqual(theirs);
      }),
      // Keys Object.prototype also has: each diff once took the inherited method for a value.
      {
        numRuns: 300,
        examples: [
          [{}, { valueOf: [] }],
          [{ toString: 1 }, {}],
          [{ constructor: null }, { constructor: 1 }],
        ],
      },
    );
  });

  it('finds where two runs diverge as the runtime diffRuns does', async () => {
    const a = await demoEvents('m-a');
    const b = await demoEvents('m-b');
    const same = compareRuns(a as unknown as Envelope[], b as unknown as Envelope[]);
    expect(same.identical).toBe(diffRuns(a, b).identical);
    expect(same.shared).toBe(diffRuns(a, b).sharedEvents);
    for (const cut of [1, 2, 5, 13, 20, 25]) {
      const ours = compareRuns(a.slice(0, cut) as unknown as Envelope[], b as unknown as Envelope[]);
      const theirs = diffRuns(a, b, { aVersion: cut });
      expect([ours.shared, ours.identical]).toEqual([theirs.sharedEvents, theirs.identical]);
      expect(ours.b[ours.divergence as number]?.version).toBe(theirs.firstDivergence?.b?.version);
    }
  });
});
