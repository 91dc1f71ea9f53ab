import { setTimeout as sleep } from 'node:timers/promises';
import { defineWorkflow, type StepIO } from '../../src/runtime/index.js';
import type { CallLedger } from './calls.js';

/**
 * The run every process of the concurrency torture acts on: a step, a
 * checkpoint, two steps in parallel, a wait for a signal, then a step whose
 * compensation fails twice in some runs (so a rollback past it needs an
 * operator's retry), and a last step. Each function records its call, then
 * takes a little while (minding its abort signal, as well-behaved step code
 * does), so requests and other processes meet runs mid-step.
 */
export function chaosWorkflow(ledger: CallLedger) {
  const step = (name: string) => async (io: StepIO) => {
    ledger.call('step', io.idempotencyKey, io.attempt);
    await sleep(5 + Math.floor(Math.random() * 40), undefined, { signal: io.signal });
    return name;
  };
  const undo = (flaky: boolean) => async (_result: string, io: StepIO) => {
    ledger.call('compensation', io.idempotencyKey, io.attempt);
    await sleep(Math.floor(Math.random() * 10));
    if (flaky && io.attempt <= 2) throw new Error('provider unavailable');
  };
  return defineWorkflow<{ flaky: boolean }, null, { type: 'None'; data: null }, string>({
    name: 'chaos',
    initialState: null,
    apply: (s) => s,
    run: async (ctx, input) => {
      await ctx.step('a', step('a'), { compensate: undo(false) });
      await ctx.checkpoint('after-a');
      await Promise.all([ctx.step('b1', step('b1'), { compensate: undo(false) }), ctx.step('b2', step('b2'), { compensate: undo(false) })]);
      await ctx.waitFor('go');
      await ctx.step('c', step('c'), { compensate: undo(input.flaky), compensationRetry: { attempts: 2, initialDelayMs: 5 } });
      await ctx.step('d', step('d'));
      return 'done';
    },
  });
}

/**
 * The run of the fencing and takeover tests (fencing.test.ts): a slow first
 * step that does not mind its abort signal, as a call into a provider that
 * cannot be stopped may not, then two short steps. Every call is counted in
 * the ledger; `slowMs` is how long the first step takes in this process.
 */
export function slowWorkflow(ledger: CallLedger, slowMs: number) {
  const call = (ms: number) => async (io: StepIO) => {
    ledger.call('step', io.idempotencyKey, io.attempt);
    await sleep(ms);
    return io.idempotencyKey;
  };
  return defineWorkflow<null, null, { type: 'None'; data: null }, string>({
    name: 'slow',
    initialState: null,
    apply: (s) => s,
    run: async (ctx) => {
      await ctx.step('slow', call(slowMs));
      await ctx.step('b', call(5));
      await ctx.step('c', call(5));
      return 'done';
    },
  });
}
