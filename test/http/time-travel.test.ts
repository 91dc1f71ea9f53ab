import { afterEach, describe, expect, it } from 'vitest';
import { backends, type Harness, startHarness } from './helpers.js';
import { tripRuntime, World } from './workflows.js';

let h: Harness;
afterEach(() => h?.close());

async function settled(runId: string, status: string) {
  await expect.poll(async () => (await (await h.call(`/runs/${runId}`)).json()).status, { timeout: 10_000 }).toBe(status);
}

/** A completed trip that was rolled back to "planned" once and then finished again. */
async function tripWithARollback() {
  expect((await h.call('/runs', { json: { workflow: 'trip', input: { hotel: 'Grand' }, runId: 'tt' } })).status).toBe(202);
  await settled('tt', 'completed');
  expect((await h.call('/runs/tt/rollback', { json: { to: 'planned', reason: 'Grand is full', after: 'retry' } })).status).toBe(200);
  await settled('tt', 'completed');
}

describe.each(backends)('time travel on $name', (backend) => {
  it('shows the marked history, the state at any point, forks and diffs', async () => {
    h = await startHarness(backend, { runtime: tripRuntime(new World()) });
    await tripWithARollback();

    const history = await (await h.call('/runs/tt/history')).json();
    const statuses = new Set(history.events.map((e: { status: string }) => e.status));
    expect(statuses).toEqual(new Set(['effective', 'rolled_back', 'marker']));
    expect(history.rollbacks).toEqual([expect.objectContaining({ label: 'planned', reason: 'Grand is full' })]);

    expect((await (await h.call('/runs/tt/state')).json()).state).toEqual({ booked: ['FL-1', 'Grand'] });
    const planned = await (await h.call('/runs/tt/state?label=planned')).json();
    expect(planned).toMatchObject({ runId: 'tt', type: 'Checkpoint', state: { booked: [] } });
    // Version 5 is the first Booked: the flight, before the rollback undid it.
    expect(await (await h.call('/runs/tt/state?version=5')).json()).toMatchObject({ type: 'Booked', state: { booked: ['FL-1'] } });
    // A time is the newest event recorded at or before it (events of one millisecond share a time).
    const first = history.events[0].recordedAt;
    const atFirst = history.events.filter((e: { recordedAt: string }) => e.recordedAt <= first).at(-1);
    const byTime = await (await h.call(`/runs/tt/state?time=${encodeURIComponent(first)}`)).json();
    expect(byTime).toEqual({
      runId: 'tt',
      version: atFirst.version,
      recordedAt: first,
      type: atFirst.type,
      state: { booked: [] },
      ...(atFirst.type === 'Checkpoint' ? { fromCheckpoint: { label: 'planned', version: 2 } } : {}),
    });

    const forked = await h.call('/runs/tt/fork', {
      json: { at: { label: 'planned' }, runId: 'tt-other', input: { hotel: 'Harbour Inn' } },
    });
    expect(forked.status).toBe(202);
    await settled('tt-other', 'completed');
    expect((await (await h.call('/runs/tt-other')).json()).state).toEqual({ booked: ['FL-1', 'Harbour Inn'] });

    const diff = await (await h.call('/runs/tt/diff/tt-other')).json();
    expect(diff.relation).toMatchObject({ kind: 'fork', parent: 'tt', child: 'tt-other' });
    expect(diff.identical).toBe(false);
    // Their inputs differ, so they part at the first event; the states differ by the hotel.
    expect(diff.sharedEvents).toBe(0);
    expect(diff.firstDivergence).toEqual({
      index: 0,
      a: { version: 1, type: 'RunStarted', data: { runId: 'tt', workflow: 'trip', workflowVersion: '1', input: { hotel: 'Grand' } } },
      b: {
        version: 1,
        type: 'RunStarted',
        data: {
          runId: 'tt-other',
          workflow: 'trip',
          workflowVersion: '1',
          input: { hotel: 'Harbour Inn' },
          forkedFrom: { runId: 'tt', version: 2 },
        },
      },
    });
    expect(diff.state.diff).toEqual({
      equal: false,
      added: [],
      removed: [],
      changed: [{ path: ['booked', 1], at: 'booked[1]', from: 'Grand', to: 'Harbour Inn' }],
    });
    // At "planned" (v2 in both: the fork copied it) nothing was booked yet.
    const atPlanned = await (await h.call('/runs/tt/diff/tt-other?label=planned')).json();
    expect([atPlanned.a.version, atPlanned.b.version]).toEqual([2, 2]);
    expect(atPlanned.state).toEqual({ a: { booked: [] }, b: { booked: [] }, diff: { equal: true, added: [], removed: [], changed: [] } });
  });
});

describe('time travel refusals', () => {
  it('answers 404 for points and runs that do not exist, 400 for malformed ones, 409 for a fork inside a step', async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()) });
    await tripWithARollback();
    const head = await h.store.headPosition();

    for (const path of [
      '/runs/tt/state?version=9999',
      '/runs/tt/state?label=nowhere',
      '/runs/ghost/state',
      '/runs/ghost/history',
      '/runs/tt/diff/ghost',
    ]) {
      const res = await h.call(path);
      expect(res.status, path).toBe(404);
    }
    for (const path of [
      '/runs/tt/state?version=1&label=planned',
      '/runs/tt/state?time=someday',
      '/runs/tt/diff/tt?version=1',
      '/runs/tt/state?version=0',
    ]) {
      const res = await h.call(path);
      expect(res.status, path).toBe(400);
    }

    const history = await (await h.call('/runs/tt/history')).json();
    const stepStarted = history.events.find((e: { type: string }) => e.type === 'StepStarted');
    const inside = await h.call('/runs/tt/fork', { json: { at: { version: stepStarted.version } } });
    expect(inside.status).toBe(409);
    expect((await inside.json()).error.code).toBe('FORK_POINT');
    for (const body of [{ at: { version: 0 } }, { at: { when: 'now' } }, { at: 3 }, { workflow: 42 }]) {
      expect((await h.call('/runs/tt/fork', { json: body })).status, JSON.stringify(body)).toBe(400);
    }
    expect((await h.call('/runs/ghost/fork', { json: {} })).status).toBe(404);
    expect(await h.store.headPosition()).toBe(head);
  });
});
