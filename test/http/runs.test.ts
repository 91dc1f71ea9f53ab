import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/index.js';
import { ADMIN, backends, type Harness, READER, startHarness } from './helpers.js';
import { tripRuntime, World } from './workflows.js';

let h: Harness;
afterEach(() => h?.close());

async function start(runId: string, hotel = 'Harbour Inn') {
  const res = await h.call('/runs', { json: { workflow: 'trip', input: { hotel }, runId } });
  expect(res.status).toBe(202);
  return res.json();
}

async function settled(runId: string, status: string) {
  await expect.poll(async () => (await (await h.call(`/runs/${runId}`)).json()).status, { timeout: 10_000 }).toBe(status);
  return (await h.call(`/runs/${runId}`)).json();
}

describe.each(backends)('runs on $name', (backend) => {
  it('starts a run, shows it, its history, and rolls it back to a checkpoint', async () => {
    const world = new World();
    h = await startHarness(backend, { runtime: tripRuntime(world) });
    const started = await start('trip-1');
    expect(started).toMatchObject({ runId: 'trip-1', workflow: 'trip' });

    const done = await settled('trip-1', 'completed');
    expect(done).toMatchObject({
      state: { booked: ['FL-1', 'Harbour Inn'] },
      output: { flight: 'FL-1', hotel: 'Harbour Inn' },
      rollbacks: [],
    });

    const history = await (await h.call('/runs/trip-1/events')).json();
    expect(history.events[0]).toMatchObject({ streamId: 'run-trip-1', type: 'RunStarted', version: 1 });
    expect(history.events.at(-1).type).toBe('RunCompleted');

    const res = await h.call('/runs/trip-1/rollback', { json: { to: 'planned', reason: 'hotel cancelled on us' } });
    expect(res.status).toBe(200);
    const rolled = await res.json();
    expect(rolled).toMatchObject({ status: 'rolled_back', state: { booked: [] } });
    expect(rolled.rollbacks).toEqual([expect.objectContaining({ label: 'planned', reason: 'hotel cancelled on us' })]);
    expect(world.undone).toEqual(['hotel', 'flight']);

    const resumed = await h.call('/runs/trip-1/resume', { method: 'POST' });
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ status: 'completed', state: { booked: ['FL-1', 'Harbour Inn'] } });
  });
});

describe('runs', () => {
  it('lists runs with filters and paging', async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()) });
    for (const id of ['c', 'a', 'b']) {
      await start(id);
      await new Promise((r) => setTimeout(r, 3)); // each its own start time, for the newest-first page below
    }
    for (const id of ['a', 'b', 'c']) await settled(id, 'completed');

    const all = await (await h.call('/runs')).json();
    expect(all.runs.map((r: { runId: string }) => r.runId)).toEqual(['a', 'b', 'c']);
    expect(all.runs[0]).toMatchObject({ workflow: 'trip', status: 'completed' });

    const page = await (await h.call('/runs?limit=2')).json();
    expect(page.runs.map((r: { runId: string }) => r.runId)).toEqual(['a', 'b']);
    const rest = await (await h.call(`/runs?limit=2&after=${page.next}`)).json();
    expect(rest).toEqual({ runs: [expect.objectContaining({ runId: 'c' })] });

    expect((await (await h.call('/runs?status=running')).json()).runs).toEqual([]);
    expect((await (await h.call('/runs?workflow=other')).json()).runs).toEqual([]);
    expect((await h.call('/runs?status=sleeping')).status).toBe(400);

    // Newest first (started c, a, b in that order), a page at a time with the cursor it gives.
    const newest = await (await h.call('/runs?order=newest&limit=2')).json();
    expect(newest.runs.map((r: { runId: string }) => r.runId)).toEqual(['b', 'a']);
    const older = await (await h.call(`/runs?order=newest&limit=2&after=${encodeURIComponent(newest.next)}`)).json();
    expect(older).toEqual({ runs: [expect.objectContaining({ runId: 'c' })] });
    expect((await h.call('/runs?order=sideways')).status).toBe(400);
    expect((await (await h.call('/runs?idPrefix=b')).json()).runs.map((r: { runId: string }) => r.runId)).toEqual(['b']);
    const wrongCursor = await h.call('/runs?order=oldest&after=a');
    expect(wrongCursor.status).toBe(400);
    expect((await wrongCursor.json()).error.message).toMatch(/not one of a list ordered oldest/);

    expect(await (await h.call('/run-counts')).json()).toEqual({
      total: 3,
      byStatus: { completed: 3 },
      byWorkflow: [{ workflow: 'trip', status: 'completed', runs: 3 }],
    });
  });

  it('answers unknown runs, workflows and checkpoints with 404/400 and writes nothing', async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()) });
    await start('r');
    await settled('r', 'completed');
    const head = await h.store.headPosition();

    for (const [method, path] of [
      ['GET', '/runs/ghost'],
      ['GET', '/runs/ghost/events'],
      ['POST', '/runs/ghost/resume'],
    ] as const) {
      const res = await h.call(path, { method });
      expect(res.status, path).toBe(404);
      expect((await res.json()).error.code).toBe('RUN_NOT_FOUND');
    }
    const ghost = await h.call('/runs/ghost/rollback', { json: { to: 'latest', reason: 'x' } });
    expect(ghost.status).toBe(404);

    const checkpoint = await h.call('/runs/r/rollback', { json: { to: 'nowhere', reason: 'x' } });
    expect(checkpoint.status).toBe(404);
    expect((await checkpoint.json()).error).toMatchObject({ code: 'CHECKPOINT_NOT_FOUND', hint: expect.stringContaining('planned') });

    const unknown = await h.call('/runs', { json: { workflow: 'nope', input: null } });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.code).toBe('UNKNOWN_WORKFLOW');

    for (const body of [
      { to: 'latest' },
      { to: 'latest', reason: '  ' },
      { to: -1, reason: 'x' },
      { to: 'latest', reason: 'x', after: 'later' },
    ]) {
      const res = await h.call('/runs/r/rollback', { json: body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await h.call('/runs', { json: { input: {} } })).status).toBe(400);
    expect(await h.store.headPosition()).toBe(head);
  });

  it('refuses what the run state does not allow with 409', async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()) });
    await start('r');
    await settled('r', 'completed');
    const cancel = await h.call('/runs/r/cancel', { json: {} });
    expect(cancel.status).toBe(409);
    expect((await cancel.json()).error.code).toBe('RUN_STATE');
    expect((await h.call('/runs/r/retry', { json: {} })).status).toBe(409);
    const conflict = await h.call('/runs', { json: { workflow: 'trip', input: { hotel: 'Other' }, runId: 'r' } });
    expect(conflict.status).toBe(409);
    expect((await conflict.json()).error.code).toBe('RUN_CONFLICT');
  });

  it('cancels a running run', async () => {
    const world = new World();
    let release!: () => void;
    world.flightGate = new Promise((resolve) => {
      release = resolve;
    });
    h = await startHarness(undefined, { runtime: tripRuntime(world) });
    await start('slow');
    const res = await h.call('/runs/slow/cancel', { json: { reason: 'customer changed their mind' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'cancelled' });
    release();
  });

  it('retries a stuck compensation, or records one resolved by hand', async () => {
    const world = new World();
    world.hotelUndoBroken = true;
    h = await startHarness(undefined, { runtime: tripRuntime(world) });
    for (const id of ['x', 'y']) {
      await start(id);
      await settled(id, 'completed');
      const stuck = await h.call(`/runs/${id}/rollback`, { json: { to: 'start', reason: 'undo all' } });
      expect(stuck.status).toBe(200);
      expect(await stuck.json()).toMatchObject({ status: 'needs_attention', attention: { step: 'book-hotel', stage: 'compensation' } });
    }

    world.hotelUndoBroken = false;
    const retried = await h.call('/runs/x/retry', { json: { note: 'hotel API is back' } });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ status: 'rolled_back', state: { booked: [] } });

    expect((await h.call('/runs/y/resolve', { json: {} })).status).toBe(400);
    const resolved = await h.call('/runs/y/resolve', { json: { note: 'cancelled by phone' } });
    expect(resolved.status).toBe(200);
    expect(await resolved.json()).toMatchObject({ status: 'rolled_back' });
    const events = (await (await h.call('/runs/y/events')).json()).events;
    expect(events.find((e: { type: string }) => e.type === 'ResolvedByHand').data).toMatchObject({ note: 'cancelled by phone' });
  });

  it('answers 202 when an action outlasts the wait, and the run goes on', async () => {
    const world = new World();
    let release!: () => void;
    world.hotelUndoGate = new Promise((resolve) => {
      release = resolve;
    });
    h = await startHarness(undefined, { runtime: tripRuntime(world), actionWaitMs: 50 });
    await start('long');
    await settled('long', 'completed');
    const res = await h.call('/runs/long/rollback', { json: { to: 'planned', reason: 'slow undo' } });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'rolling_back' });
    release();
    await settled('long', 'rolled_back');
  });

  it('records a rollback for a workflow this server does not know, for a worker that does (202)', async () => {
    const world = new World();
    h = await startHarness(undefined, { runtime: (store) => createRuntime({ store }) });
    const worker = tripRuntime(world)(h.store);
    await worker.start('trip', { hotel: 'H' }, { runId: 'remote' });

    const res = await h.call('/runs/remote/rollback', { json: { to: 'planned', reason: 'ops' } });
    expect(res.status).toBe(202);
    // Recorded in the run's inbox for whoever drives it with the code: the run as it stands until then.
    expect(await res.json()).toMatchObject({ status: 'completed' });
    expect(world.undone).toEqual([]);

    // Resuming carries out the recorded rollback, then runs on from the checkpoint.
    const resumed = await worker.resume('remote');
    expect(world.undone).toEqual(['hotel', 'flight']);
    expect(resumed.rollbacks).toEqual([expect.objectContaining({ label: 'planned', reason: 'ops' })]);
    await worker.close();
  });

  it('lets a read-only token look but not act', async () => {
    h = await startHarness(undefined, { runtime: tripRuntime(new World()), tokens: { admin: ADMIN, read: READER } });
    const denied = await h.call('/runs', { json: { workflow: 'trip', input: { hotel: 'H' } }, token: READER });
    expect(denied.status).toBe(403);
    expect((await h.call('/runs', { token: READER })).status).toBe(200);
    const ok = await h.call('/runs', { json: { workflow: 'trip', input: { hotel: 'H' }, runId: 'z' }, token: ADMIN });
    expect(ok.status).toBe(202);
    expect((await h.call('/runs/z/rollback', { json: { to: 'start', reason: 'x' }, token: READER })).status).toBe(403);
  });
});
