// What the debugger draws, from the run model it shares with the runtime and
// the CLI (src/runtime/model): rows with their marks and durations, the state
// at a point when the server cannot fold the workflow's, state changes in
// reading order, two runs aligned. And the browser bundle holds no Node code.
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runTravelDemo, TravelWorld, travelWorkflow } from '../../examples/travel.js';
import { createRuntime, diffRuns, diffState, effectiveEvents, historyOf, runStreamId } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/open.js';
import { timelineOf } from '../../src/surfaces/cli/timeline.js';
import { alignRuns, changeList, effectiveAt, journalStateAt, rowsOf } from '../../src/surfaces/web/app/model.js';

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
    const rows = rowsOf(events);
    const history = historyOf(events);
    expect(rows.map((r) => [r.event.version, r.status, r.undoneBy])).toEqual(history.events.map((e) => [e.version, e.status, e.undoneBy]));
    expect(rows.map((r) => r.durationMs)).toEqual(timelineOf(events).map((t) => t.durationMs));
    // The demo's detour: v3..v19 undone by the marker at v20.
    expect(rows.filter((r) => r.status === 'rolled_back').map((r) => r.event.version)).toEqual(Array.from({ length: 17 }, (_, i) => i + 3));
    expect(rows[19]).toMatchObject({ kind: 'marker', status: 'marker', summary: 'to "planned" (v2): Grand Hotel is full' });
    expect(rows.map((r) => r.kind).slice(9, 19)).toEqual([
      'step',
      'fail',
      'step',
      'fail',
      'rollback',
      'comp',
      'comp',
      'comp',
      'comp',
      'comp',
    ]);
  });

  it('computes the effective history at every version as the runtime does', async () => {
    const events = await demoEvents('m-2');
    for (let v = 1; v <= events.length; v++) {
      expect(effectiveAt(events, v).map((e) => e.id)).toEqual(effectiveEvents(events.slice(0, v)).map((e) => e.id));
    }
    // At v13 the first hotel had been chosen and the flight booked; at the end that detour is gone.
    const at13 = journalStateAt(events, 13) as Record<string, any>;
    expect(at13.steps).toEqual({ 'book-flight': 'FL-1-book-flight', 'charge-card': 'PAY-3-charge-card' });
    expect(at13.failures).toEqual({ 'book-hotel': 'Grand Hotel is full' });
    expect(at13.emitted.map((e: { type: string }) => e.type)).toEqual(['FlightBooked', 'CardCharged', 'HotelChosen']);
    const end = journalStateAt(events, events.length) as Record<string, any>;
    expect(end.phase).toBe('completed');
    expect(end.steps).toEqual({ 'book-flight': 'FL-book-flight-r1', 'charge-card': 'PAY-charge-card-r1', 'book-hotel': 'HT-HarbourInn' });
  });

  it("gives the phase at a point as the run's status there: a rollback that stops rests rolled back", async () => {
    const store = await openStore('memory:');
    await runTravelDemo(store, { runId: 'm-stop' });
    const runtime = createRuntime({ store, workflows: [travelWorkflow(new TravelWorld())] });
    const info = await runtime.rollback('m-stop', { to: 'planned', reason: 'stop here' });
    const events = await store.read(runStreamId('m-stop'));
    const phases = events.map((e) => (journalStateAt(events, e.version) as { phase: string }).phase);
    expect(info.status).toBe('rolled_back');
    expect(phases.at(-1)).toBe('rolled_back');
    // The demo's own rollback went on with a retry: running again right at its marker.
    expect(phases.slice(13, 21)).toEqual([
      'rolling_back',
      'rolling_back',
      'rolling_back',
      'rolling_back',
      'rolling_back',
      'rolling_back',
      'running',
      'running',
    ]);
    await store.close();
  });

  it('lists the changes of a state diff once each, in the order of their paths', () => {
    const key = (c: { at: string }, op: string) => `${op} ${c.at}`;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.jsonValue({ maxDepth: 4 }), (a, b) => {
        const d = diffState(a, b);
        const list = changeList(d);
        expect(list.map((c) => key(c, c.op)).sort()).toEqual(
          [
            ...d.added.map((c) => key(c, 'added')),
            ...d.removed.map((c) => key(c, 'removed')),
            ...d.changed.map((c) => key(c, 'changed')),
          ].sort(),
        );
        for (let i = 1; i < list.length; i++) {
          const [p, q] = [(list[i - 1] as (typeof list)[number]).path, (list[i] as (typeof list)[number]).path];
          const at = p.findIndex((s, j) => s !== q[j]);
          // Where two paths first differ, indexes come in number order and keys in text order; a path comes before those under it.
          if (at === -1) expect(p.length).toBeLessThanOrEqual(q.length);
          else if (typeof p[at] === 'number' && typeof q[at] === 'number') expect(p[at] as number).toBeLessThan(q[at] as number);
          else expect(String(p[at]) < String(q[at])).toBe(true);
        }
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
    expect(changeList(diffState({ b: [1, 2], a: 1, c: { x: 1 } }, { b: [1, 3, 4], c: {}, d: true }))).toEqual([
      { op: 'removed', path: ['a'], at: 'a', value: 1 },
      { op: 'changed', path: ['b', 1], at: 'b[1]', from: 2, to: 3 },
      { op: 'added', path: ['b', 2], at: 'b[2]', value: 4 },
      { op: 'removed', path: ['c', 'x'], at: 'c.x', value: 1 },
      { op: 'added', path: ['d'], at: 'd', value: true },
    ]);
  });

  it('aligns two runs where the runtime diffRuns does', async () => {
    const a = await demoEvents('m-a');
    const b = await demoEvents('m-b');
    const same = alignRuns(a, b);
    expect([same.shared, same.identical, same.relation]).toEqual([13, true, { kind: 'same-workflow', workflow: 'travel' }]);
    expect(same.shared).toBe(diffRuns(a, b).sharedEvents);
    // Cut at each version: how many effective events the prefix shares with the whole run, and where the whole run goes on.
    const cuts = [1, 2, 5, 13, 20, 25].map((cut) => {
      const ours = alignRuns(a.slice(0, cut), b);
      const theirs = diffRuns(a, b, { aVersion: cut });
      expect([ours.shared, ours.identical]).toEqual([theirs.sharedEvents, theirs.identical]);
      return [cut, ours.shared, ours.b.effective[ours.shared]?.version];
    });
    expect(cuts).toEqual([
      [1, 1, 2],
      [2, 2, 21],
      [5, 3, 22],
      [13, 3, 22],
      [20, 2, 21],
      [25, 7, 26],
    ]);
  });

  it('builds a browser bundle that holds no Node.js module', async () => {
    const assets = fileURLToPath(new URL('../../dist/web/assets/', import.meta.url));
    const scripts = (await readdir(assets)).filter((f) => f.endsWith('.js'));
    expect(scripts).toHaveLength(1);
    const bundle = await readFile(`${assets}${scripts[0]}`, 'utf8');
    // Vite stands a stub module in for each Node built-in a browser build imports.
    expect(bundle).not.toContain('__vite-browser-external');
    expect(bundle).not.toMatch(/["']node:[a-z]/);
  });
});
