import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  defineWorkflow,
  effectiveEvents,
  foldState,
  isRunEventType,
  RunEvents,
  type StepCompletedData,
} from '../../src/runtime/index.js';
import { crashAfter, label, makeStore, type Op, op, SimulatedCrash } from './helpers.js';

/**
 * Interprets a random program. The j-th 'fail' op fails exactly when the run
 * has been rolled back j times, so every failure fires once, in order, and
 * the last pass runs the whole program: its state must be every emit, in order.
 */
function programWorkflow(ops: Op[], calls: Map<string, number>, undone: Map<string, number>) {
  return defineWorkflow({
    name: 'program',
    initialState: [] as number[],
    apply: (s: number[], e) => [...s, e.data as number],
    run: async (ctx) => {
      let fails = 0;
      for (const [i, o] of ops.entries()) {
        if (o.kind === 'emit') await ctx.emit({ type: 'Value', data: o.value });
        else if (o.kind === 'checkpoint') await ctx.checkpoint(o.label);
        else if (o.kind === 'step') {
          await ctx.step(`s${i}`, ({ idempotencyKey }) => void calls.set(idempotencyKey, (calls.get(idempotencyKey) ?? 0) + 1), {
            compensate: (_r, { idempotencyKey }) => void undone.set(idempotencyKey, (undone.get(idempotencyKey) ?? 0) + 1),
          });
        } else {
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

describe('replay equals live (property)', () => {
  it('state folded from the effective history equals the state the run ended with, across rollbacks and a crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 18 }), fc.nat({ max: 80 }), fc.option(label), async (ops, crashAt, extra) => {
        const store = await makeStore();
        const calls = new Map<string, number>();
        const undone = new Map<string, number>();
        const wf = programWorkflow(ops, calls, undone);
        let appended = 0;
        const crashing = crashAfter(store, () => appended++ === crashAt);
        const first = await createRuntime({ store: crashing })
          .start(wf, null, { runId: 'p' })
          .catch((e) => {
            if (!(e instanceof SimulatedCrash)) throw e;
            return undefined;
          });
        const info = first ?? (await createRuntime({ store, workflows: [wf] }).resume('p'));

        expect(info.status).toBe('completed');
        const everyEmit = ops.flatMap((o) => (o.kind === 'emit' ? [o.value] : []));
        expect(info.output).toEqual(everyEmit);

        const events = await store.read('run-p');
        const effective = effectiveEvents(events);
        // The checkpoint shortcut and a fold from the very start agree with the live state.
        expect(foldState(wf, effective)).toEqual(info.output);
        const fromStart = effective.filter((e) => !isRunEventType(e.type)).map((e) => e.data);
        expect(fromStart).toEqual(info.output);

        // No step ran twice under one key; every rolled-back step was compensated exactly once, and no other.
        for (const n of calls.values()) expect(n).toBe(1);
        const kept = new Set(
          effective.filter((e) => e.type === RunEvents.StepCompleted).map((e) => (e.data as StepCompletedData).idempotencyKey),
        );
        for (const key of calls.keys()) expect(undone.get(`${key}:undo`) ?? 0).toBe(kept.has(key) ? 0 : 1);
        expect(info.rollbacks).toHaveLength(ops.filter((o) => o.kind === 'fail').length);

        // Then an operator rolls the finished run back to one of its checkpoints and lets it run again.
        if (extra !== null) {
          const runtime = createRuntime({ store, workflows: [wf] });
          if (!ops.some((o) => o.kind === 'checkpoint' && o.label === extra)) {
            const version = await store.streamVersion('run-p');
            await expect(runtime.rollback('p', { to: extra, reason: 'property' })).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
            expect(await store.streamVersion('run-p')).toBe(version);
          } else {
            const again = await runtime.rollback('p', { to: extra, reason: 'property', after: 'retry' });
            expect(again.status).toBe('completed');
            expect(again.output).toEqual(everyEmit);
            const all = await store.read('run-p');
            const live = effectiveEvents(all);
            expect(foldState(wf, live)).toEqual(everyEmit);
            for (const n of calls.values()) expect(n).toBe(1);
            const keptNow = new Set(
              live.filter((e) => e.type === RunEvents.StepCompleted).map((e) => (e.data as StepCompletedData).idempotencyKey),
            );
            for (const key of calls.keys()) expect(undone.get(`${key}:undo`) ?? 0).toBe(keptNow.has(key) ? 0 : 1);
          }
        }
        expect((await store.verify()).ok).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
