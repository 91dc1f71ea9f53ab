import { afterEach, describe, expect, it } from 'vitest';
import type { NewEvent } from '../../src/events/envelope.js';
// From the package entry: the built-in read models are public, and find() knows their documents' types.
import { builtInProjections, openProjections, toolStats } from '../../src/index.js';
import type { EventStore } from '../../src/store/types.js';
import { kinds, openTestStore, removeTempDirs } from './helpers.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  removeTempDirs();
});

const at = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;
const ev = (type: string, data: unknown, second: number): NewEvent => ({ type, data, recordedAt: at(second) });
const started = (seq: number, name: string, second: number, attempt = 1) =>
  ev('StepStarted', { seq, name, idempotencyKey: `k${seq}`, attempt }, second);
const completed = (seq: number, name: string, second: number) =>
  ev('StepCompleted', { seq, name, idempotencyKey: `k${seq}`, result: null }, second);
const failed = (seq: number, name: string, second: number, final: boolean) =>
  ev(
    'StepFailed',
    { seq, name, idempotencyKey: `k${seq}`, attempt: 1, error: { name: 'Error', message: 'timeout' }, trigger: 'step-failed', final },
    second,
  );

describe.each(kinds)('built-in read models (%s)', (kind) => {
  it('runs, tool steps, checkpoints and rollbacks follow the effective history', async () => {
    const store = await openTestStore(kind);
    stores.push(store);
    const projections = await openProjections(store, [...builtInProjections]);
    await store.append('run-1', [
      ev('RunStarted', { runId: '1', workflow: 'trip', workflowVersion: '1', input: null }, 0),
      started(0, 'search', 1),
      completed(0, 'search', 3),
      ev('Checkpoint', { seq: 1, label: 'searched', state: null, index: {} }, 3),
      started(2, 'book', 4),
      failed(2, 'book', 5, false),
      started(2, 'book', 6, 2),
      completed(2, 'book', 9),
      ev('Checkpoint', { seq: 3, label: 'booked', state: null, index: {} }, 9),
      started(4, 'pay', 10),
      failed(4, 'pay', 11, true),
    ]);
    // Back to the "searched" checkpoint (version 4): book, its checkpoint and pay are undone.
    await store.append('run-1', [
      ev(
        'RolledBack',
        {
          requestVersion: 12,
          targetVersion: 4,
          label: 'searched',
          reason: 'pay failed',
          trigger: { kind: 'step-failed' },
          after: 'retry',
          index: {},
        },
        12,
      ),
      started(2, 'book', 13),
    ]);
    await store.append('run-2', [
      ev('RunStarted', { runId: '2', workflow: 'trip', workflowVersion: '1', input: null }, 20),
      started(0, 'search', 20),
      completed(0, 'search', 22),
      ev('RunCompleted', { output: null }, 23),
    ]);
    await projections.catchUp();

    const run1 = await projections.get('runs', 'run-1');
    expect(run1).toMatchObject({
      runId: '1',
      workflow: 'trip',
      status: 'running',
      currentStep: 'book',
      stepsStarted: 2,
      stepsCompleted: 1,
      stepsFailed: 0,
      checkpoints: 1,
      rollbacks: 1,
      startedAt: at(0),
      endedAt: null,
      version: 13,
    });
    expect(await projections.get('runs', 'run-2')).toMatchObject({ status: 'completed', endedAt: at(23), stepsCompleted: 1 });
    expect((await projections.find('runs', { where: { status: 'completed' } })).map((d) => d.key)).toEqual(['run-2']);

    expect(await toolStats(projections)).toEqual([
      { tool: 'book', calls: 1, failures: 0, meanLatencyMs: 0, maxLatencyMs: 0 },
      { tool: 'search', calls: 2, failures: 0, meanLatencyMs: 2000, maxLatencyMs: 2000 },
    ]);
    expect((await projections.find('checkpoints')).map((d) => d.doc)).toEqual([
      { runId: '1', label: 'searched', version: 4, recordedAt: at(3) },
    ]);
    expect((await projections.find('rollbacks')).map((d) => d.doc)).toEqual([
      { runId: '1', version: 12, targetVersion: 4, label: 'searched', reason: 'pay failed', trigger: 'step-failed', recordedAt: at(12) },
    ]);

    // Before the rollback the failed booking attempt and pay counted; a rebuild agrees with the live model.
    const live = await Promise.all(builtInProjections.map((p) => projections.find(p.name, { limit: 1000 })));
    for (const p of builtInProjections) await projections.rebuild(p.name);
    expect(await Promise.all(builtInProjections.map((p) => projections.find(p.name, { limit: 1000 })))).toEqual(live);
    await projections.close();
  });
});
