import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BreakerEvents, backoffDelay, createRuntime, decide, defineWorkflow, type Failure, RunEvents } from '../../src/runtime/index.js';
import { crashAfter, fastClock, makeStore, typesOf } from './helpers.js';

/** Every trigger test: checkpoint 'safe', then a step with a compensation, then the trigger; the retry path succeeds. */
function guarded(name: string, trigger: (ctx: any, firstPass: boolean) => Promise<unknown>, undone: string[]) {
  return defineWorkflow({
    name,
    initialState: { balance: 0 },
    apply: (s: { balance: number }, e) => (e.type === 'Moved' ? { balance: s.balance + (e.data as number) } : s),
    invariants: { 'balance never negative': (s) => s.balance >= 0 },
    onFailure: { rollbackTo: 'safe' },
    run: async (ctx) => {
      await ctx.checkpoint('safe');
      await ctx.step('side-effect', () => 'done', { compensate: () => void undone.push('side-effect') });
      await trigger(ctx, ctx.rollbacks.length === 0);
      return ctx.state;
    },
  });
}

describe('triggers', () => {
  it('an invariant broken by ctx.emit rolls back', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = guarded('invariant', (ctx, first) => ctx.emit({ type: 'Moved', data: first ? -5 : 5 }), undone);
    const info = await createRuntime({ store }).start(wf, null, { runId: 'inv' });
    expect(info.status).toBe('completed');
    expect(info.state).toEqual({ balance: 5 });
    expect(info.rollbacks[0]?.trigger).toMatchObject({ kind: 'invariant', error: { code: 'INVARIANT' } });
    expect(undone).toEqual(['side-effect']);
  });

  it('an output that fails its schema rolls back', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = guarded(
      'schema',
      (ctx, first) => ctx.step('model', () => (first ? { answer: 42 } : { answer: '42' }), { output: z.object({ answer: z.string() }) }),
      undone,
    );
    const info = await createRuntime({ store }).start(wf, null, { runId: 'sch' });
    expect(info.status).toBe('completed');
    expect(info.rollbacks[0]?.trigger).toMatchObject({ kind: 'output-invalid', step: 'model' });
    expect(undone).toEqual(['side-effect']);
  });

  it('a step timeout aborts its signal and rolls back', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    let aborted: unknown;
    const wf = guarded(
      'timeout',
      (ctx, first) =>
        ctx.step(
          'slow',
          ({ signal }: { signal: AbortSignal }) =>
            first
              ? new Promise((_, reject) =>
                  signal.addEventListener('abort', () => {
                    aborted = signal.reason;
                    reject(signal.reason);
                  }),
                )
              : 'fast',
          { timeoutMs: 20 },
        ),
      undone,
    );
    const info = await createRuntime({ store }).start(wf, null, { runId: 'to' });
    expect(info.status).toBe('completed');
    expect(info.rollbacks[0]?.trigger).toMatchObject({ kind: 'timeout', error: { code: 'STEP_TIMEOUT' } });
    expect((aborted as { code?: string }).code).toBe('STEP_TIMEOUT');
  });

  it("'compensate-and-fail' undoes everything, newest first, then fails", async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = defineWorkflow({
      name: 'caf',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.checkpoint('mid');
        for (const s of ['one', 'two']) await ctx.step(s, () => s, { compensate: () => void undone.push(s) });
        await ctx.step(
          'bad',
          () => {
            throw new Error('bad');
          },
          { onFailure: 'compensate-and-fail' },
        );
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'caf' });
    expect(info.status).toBe('failed');
    expect(info.error).toMatchObject({ message: 'bad' });
    expect(undone).toEqual(['two', 'one']);
    expect(info.rollbacks[0]).toMatchObject({ label: '(start)', targetVersion: 1 });
  });

  it("'fail' hands the error to the code, which may catch it; uncaught it fails the run", async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'catching',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        const plan = await ctx
          .step('primary', () => {
            throw new Error('down');
          })
          .catch((e: Error) => `fallback after ${e.message}`);
        return plan;
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'c' });
    expect(info.output).toBe('fallback after step "primary" failed: down');
    // Replayed, the recorded failure is thrown again and caught again: same output.
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepFailed);
    await expect(createRuntime({ store: crashing }).start(wf, null, { runId: 'c2' })).rejects.toThrow();
    expect((await createRuntime({ store, workflows: [wf] }).resume('c2')).output).toBe(info.output);
    const failing = defineWorkflow({ ...wf, name: 'uncaught', run: async (ctx) => ctx.step('x', () => Promise.reject(new Error('no'))) });
    const failed = await createRuntime({ store }).start(failing, null, { runId: 'u' });
    expect(failed.status).toBe('failed');
  });

  it('a path that always fails degrades to compensate-and-fail after maxRollbacks', async () => {
    const store = await makeStore();
    const undone: string[] = [];
    const wf = defineWorkflow({
      name: 'loop',
      initialState: null,
      apply: (s) => s,
      onFailure: { rollbackTo: 'latest', maxRollbacks: 2 },
      run: async (ctx) => {
        await ctx.step('a', () => 1, { compensate: () => void undone.push('a') });
        await ctx.checkpoint('after-a');
        await ctx.step('always', () => Promise.reject(new Error('always')));
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'loop' });
    expect(info.status).toBe('failed');
    expect(info.rollbacks.map((r) => r.label)).toEqual(['after-a', 'after-a', '(start)']);
    expect(undone).toEqual(['a']);
  });

  it('circuit breaker: opens after the threshold, fails fast, half-opens after the cool-down, closes on success', async () => {
    const store = await makeStore();
    const clock = fastClock();
    let up = false;
    let calls = 0;
    const wf = defineWorkflow({
      name: 'tool-user',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) =>
        ctx.step(
          'call-tool',
          () => {
            calls++;
            if (!up) throw new Error('tool down');
            return 'ok';
          },
          { breaker: 'search-api' },
        ),
    });
    const runtime = createRuntime({ store, clock, breakers: { 'search-api': { failureThreshold: 2, cooldownMs: 1000 } } });
    expect((await runtime.start(wf, null, { runId: 'b1' })).status).toBe('failed');
    expect((await runtime.start(wf, null, { runId: 'b2' })).status).toBe('failed');
    expect((await runtime.breaker('search-api')).state).toBe('open');

    const fast = await runtime.start(wf, null, { runId: 'b3' });
    expect(fast.error).toMatchObject({ message: expect.stringContaining('circuit breaker "search-api" is open') });
    expect(calls).toBe(2);
    const failedB3 = (await store.read('run-b3')).find((e) => e.type === RunEvents.StepFailed);
    expect(failedB3?.data).toMatchObject({ trigger: 'breaker-open' });

    clock.advance(1000);
    up = true;
    expect((await runtime.start(wf, null, { runId: 'b4' })).status).toBe('completed');
    expect((await runtime.breaker('search-api')).state).toBe('closed');
    expect((await store.read('breaker-search-api')).map((e) => e.type)).toEqual([
      BreakerEvents.BreakerOpened,
      BreakerEvents.BreakerHalfOpened,
      BreakerEvents.BreakerClosed,
    ]);
    // A fresh runtime (another worker) sees the breaker's state from its stream.
    expect((await createRuntime({ store }).breaker('search-api')).state).toBe('closed');
  });

  it('a failed half-open trial opens the breaker again', async () => {
    const store = await makeStore();
    const clock = fastClock();
    const wf = defineWorkflow({
      name: 'down',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => ctx.step('t', () => Promise.reject(new Error('down')), { breaker: 'b' }),
    });
    const runtime = createRuntime({ store, clock, breakers: { b: { failureThreshold: 1, cooldownMs: 10 } } });
    await runtime.start(wf, null, { runId: 'd1' });
    clock.advance(10);
    await runtime.start(wf, null, { runId: 'd2' });
    expect((await runtime.breaker('b')).state).toBe('open');
    // The trial ran (the breaker was half-open), failed, and failed the run.
    expect(await typesOf(store, 'd2')).toEqual(['RunStarted', 'StepStarted', 'StepFailed', 'RunFailed']);
    expect((await store.read('breaker-b')).map((e) => e.type)).toEqual(['BreakerOpened', 'BreakerHalfOpened', 'BreakerOpened']);
  });
});

describe('policy (pure)', () => {
  const failure = (rollbacks: number, kind: Failure['kind'] = 'step-failed'): Failure => ({
    kind,
    step: 'pay',
    error: { name: 'Error', message: 'boom' },
    attempt: 1,
    rollbacks,
  });
  it('decides', () => {
    expect(decide(undefined, failure(0))).toEqual({ kind: 'throw' });
    expect(decide('compensate-and-fail', failure(0))).toEqual({ kind: 'rollback', to: 'start', after: 'fail' });
    expect(decide({ rollbackTo: 'x' }, failure(2))).toEqual({ kind: 'rollback', to: 'x', after: 'retry' });
    expect(decide({ rollbackTo: 'x' }, failure(3))).toEqual({ kind: 'rollback', to: 'start', after: 'fail' });
    expect(decide({ rollbackTo: 'x', past: 'irreversible' }, failure(0))).toEqual({
      kind: 'rollback',
      to: 'x',
      after: 'retry',
      past: 'irreversible',
    });
  });
  it('asks a policy function, with the failure', () => {
    const policy = (f: Failure) => (f.kind === 'timeout' ? ({ rollbackTo: 'latest' } as const) : 'fail');
    expect(decide(policy, failure(0, 'timeout'))).toEqual({ kind: 'rollback', to: 'latest', after: 'retry' });
    expect(decide(policy, failure(0))).toEqual({ kind: 'throw' });
    expect(() => decide(() => 'sometimes' as never, failure(0))).toThrow(/a failure policy chose "sometimes"/);
  });
  it('backs off exponentially with bounded jitter', () => {
    const r = { initialDelayMs: 100, factor: 2, maxDelayMs: 1000 };
    expect(backoffDelay(r, 1, 0)).toBe(50);
    expect(backoffDelay(r, 1, 1)).toBe(100);
    expect(backoffDelay(r, 3, 1)).toBe(400);
    expect(backoffDelay(r, 10, 0.5)).toBe(750);
  });
});
