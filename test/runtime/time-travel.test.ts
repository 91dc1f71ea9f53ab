import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import {
  CheckpointNotFoundError,
  createRuntime,
  defineWorkflow,
  isRunEventType,
  type RolledBackData,
  RunEvents,
  TimeTravelError,
} from '../../src/runtime/index.js';
import { countingReads, makeStore, type Op, op } from './helpers.js';

/** The j-th 'fail' fails once, when the run has been rolled back j times; live states are recorded per (rollbacks, call). */
function programWorkflow(ops: Op[], live: Map<string, number[]>) {
  return defineWorkflow({
    name: 'program',
    initialState: [] as number[],
    apply: (s: number[], e) => [...s, e.data as number],
    run: async (ctx) => {
      let fails = 0;
      for (const [i, o] of ops.entries()) {
        if (o.kind === 'emit') {
          await ctx.emit({ type: 'Value', data: o.value });
          const key = `${ctx.rollbacks.length}:${i}`;
          if (!live.has(key)) live.set(key, ctx.state);
        } else if (o.kind === 'checkpoint') await ctx.checkpoint(o.label);
        else if (o.kind === 'step') await ctx.step(`s${i}`, () => i, { compensate: () => {} });
        else {
          const j = fails++;
          await ctx.step(`f${i}`, () => (ctx.rollbacks.length === j ? Promise.reject(new Error(`fail ${j}`)) : 'ok'), {
            onFailure: { rollbackTo: o.to, maxRollbacks: 1000 },
          });
        }
      }
      return ctx.state;
    },
  });
}

/**
 * An oracle written independently of history.ts: an event at x is effective at
 * v exactly when no RolledBack marker in (x, v] targets a version below x.
 * The state folds every effective domain event from the initial state, no snapshot.
 */
function naiveState(events: readonly EventEnvelope[], v: number): number[] {
  const prefix = events.slice(0, v);
  const markers = prefix.filter((e) => e.type === RunEvents.RolledBack);
  return prefix
    .filter((e) => !isRunEventType(e.type))
    .filter((e) => !markers.some((m) => m.version > e.version && (m.data as RolledBackData).targetVersion < e.version))
    .map((e) => e.data as number);
}

describe('time travel: history and state at a point', () => {
  it('marks every event effective, rolled back (by which marker) or a marker, and lists checkpoints and rollbacks', async () => {
    const store = await makeStore();
    let attempt = 0;
    const wf = defineWorkflow({
      name: 'marks',
      initialState: [] as string[],
      apply: (s: string[], e) => [...s, e.data as string],
      onFailure: { rollbackTo: 'a' },
      run: async (ctx) => {
        await ctx.checkpoint('a');
        await ctx.emit({ type: 'Did', data: 'x' });
        await ctx.checkpoint('b');
        await ctx.step('flaky', () => {
          if (attempt++ === 0) throw new Error('first try fails');
          return 'ok';
        });
        return ctx.state;
      },
    });
    const runtime = createRuntime({ store });
    expect((await runtime.start(wf, null, { runId: 'm' })).status).toBe('completed');
    const history = await runtime.history('m');
    const marker = history.events.find((e) => e.type === RunEvents.RolledBack);
    expect(marker?.status).toBe('marker');
    const undone = history.events.filter((e) => e.status === 'rolled_back');
    // Everything after checkpoint "a" (v2) up to the marker: the emit, checkpoint "b", the failed step and the request.
    expect(undone.map((e) => [e.version, e.type])).toEqual([
      [3, 'Did'],
      [4, RunEvents.Checkpoint],
      [5, RunEvents.StepStarted],
      [6, RunEvents.StepFailed],
      [7, RunEvents.RollbackRequested],
    ]);
    expect(marker?.version).toBe(8);
    expect(undone.every((e) => e.undoneBy === 8)).toBe(true);
    expect(history.checkpoints.map((c) => [c.label, c.effective])).toEqual([
      ['a', true],
      ['b', false],
      ['b', true],
    ]);
    expect(history.rollbacks).toHaveLength(1);
    expect(history.rollbacks[0]).toMatchObject({ label: 'a', reason: 'first try fails', trigger: { kind: 'step-failed', step: 'flaky' } });
    expect(history.rollbacks[0]?.undid).toBe(undone.length);
    // A label reached twice resolves to the occurrence still effective.
    const effectiveB = history.checkpoints.find((c) => c.label === 'b' && c.effective)?.version;
    expect((await runtime.stateAt('m', { label: 'b' })).version).toBe(effectiveB);
    await expect(runtime.history('nobody')).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
  });

  it('state at a version ignores a rollback recorded later; by label and by time too', async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'counter',
      initialState: 0,
      apply: (s: number, e) => s + (e.data as number),
      run: async (ctx) => {
        await ctx.emit({ type: 'Add', data: 1 });
        await ctx.checkpoint('one');
        await ctx.emit({ type: 'Add', data: 10 });
        return ctx.state;
      },
    });
    const runtime = createRuntime({ store });
    await runtime.start(wf, null, { runId: 'c' });
    const before = await store.read('run-c');
    const end = before.length;
    await runtime.rollback('c', { to: 'one', reason: 'undo the 10' });
    expect((await runtime.get('c')).state).toBe(1);
    // Version `end` (before the rollback) still shows 11: the marker came later.
    expect((await runtime.stateAt('c', end)).state).toBe(11);
    expect((await runtime.stateAt('c', { version: end + 2 })).state).toBe(1);
    const one = await runtime.stateAt('c', { label: 'one' });
    expect(one).toMatchObject({ state: 1, type: RunEvents.Checkpoint, fromCheckpoint: { label: 'one' } });
    // A time is the newest event recorded at or before it: the rollback's first events may share the last one's millisecond.
    const lastBefore = before.at(-1) as EventEnvelope;
    const all = await store.read('run-c');
    const atTime = (all.filter((e) => e.recordedAt <= lastBefore.recordedAt).at(-1) as EventEnvelope).version;
    const markerAt = (all.find((e) => e.type === RunEvents.RolledBack) as EventEnvelope).version;
    const byTime = await runtime.stateAt('c', { time: lastBefore.recordedAt });
    expect(byTime).toMatchObject({ version: atTime, state: atTime < markerAt ? 11 : 1 });
    expect(await runtime.stateAt('c', { time: new Date(lastBefore.recordedAt) })).toEqual(byTime);

    await expect(runtime.stateAt('c', 0)).rejects.toBeInstanceOf(TimeTravelError);
    await expect(runtime.stateAt('c', 999)).rejects.toBeInstanceOf(TimeTravelError);
    await expect(runtime.stateAt('c', { time: '2000-01-01T00:00:00.000Z' })).rejects.toBeInstanceOf(TimeTravelError);
    await expect(runtime.stateAt('c', { time: 'not a date' })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(runtime.stateAt('c', { label: 'nope' })).rejects.toBeInstanceOf(CheckpointNotFoundError);
  });

  it('reads back only to the nearest effective checkpoint', async () => {
    const base = await makeStore();
    const wf = defineWorkflow({
      name: 'long',
      initialState: 0,
      apply: (s: number, e) => s + (e.data as number),
      run: async (ctx) => {
        for (let i = 0; i < 300; i++) await ctx.emit({ type: 'Add', data: 1 });
        await ctx.checkpoint('late');
        await ctx.emit({ type: 'Add', data: 1 });
        return ctx.state;
      },
    });
    await createRuntime({ store: base }).start(wf, null, { runId: 'l' });
    const { store, eventsRead, reset } = countingReads(base);
    const runtime = createRuntime({ store, workflows: [wf] });
    const end = await store.streamVersion('run-l');
    reset();
    expect((await runtime.stateAt('l', end - 1)).state).toBe(301);
    // RunStarted (for the workflow's name), then one backward page of 32 that reaches the checkpoint at v302.
    expect(eventsRead()).toBe(1 + 32);
    expect((await runtime.stateAt('l', 150)).state).toBe(149);
  });

  it('state at every version, time and label agrees with an independent replay (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 16 }), async (ops) => {
        const store = await makeStore();
        const live = new Map<string, number[]>();
        const wf = programWorkflow(ops, live);
        const runtime = createRuntime({ store });
        expect((await runtime.start(wf, null, { runId: 'p' })).status).toBe('completed');
        const events = await store.read('run-p');
        let markers = 0;
        for (const e of events) {
          const at = await runtime.stateAt<number[]>('p', e.version);
          expect(at.state).toEqual(naiveState(events, e.version));
          if (e.type === RunEvents.RolledBack) markers++;
          // Each op is one ctx call, so seq is the op's index; the pass that wrote it had seen `markers` rollbacks.
          if (e.type === 'Value') expect(at.state).toEqual(live.get(`${markers}:${e.metadata.seq}`));
          const byTime = await runtime.stateAt<number[]>('p', { time: e.recordedAt });
          expect(byTime.state).toEqual(naiveState(events, byTime.version));
          expect(Date.parse(byTime.recordedAt)).toBe(Date.parse(e.recordedAt));
        }
        for (const c of (await runtime.history('p')).checkpoints) {
          const at = await runtime.stateAt<number[]>('p', { label: c.label });
          expect(at.state).toEqual(naiveState(events, at.version));
        }
      }),
      { numRuns: 60 },
    );
  });
});
