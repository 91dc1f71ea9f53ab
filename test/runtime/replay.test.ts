import { describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, NonDeterminismError, RunEvents } from '../../src/runtime/index.js';
import { crashAfter, FakeService, fastClock, makeStore, SimulatedCrash, typesOf } from './helpers.js';

function threeSteps(service: FakeService, ran: string[]) {
  return defineWorkflow({
    name: 'three-steps',
    initialState: { n: 0 },
    apply: (s: { n: number }, e) => (e.type === 'Added' ? { n: s.n + (e.data as number) } : s),
    run: async (ctx, input: { x: number }) => {
      const effect =
        (name: string, value: number) =>
        ({ idempotencyKey }: { idempotencyKey: string }) => {
          ran.push(name);
          service.call(idempotencyKey, name);
          return value;
        };
      const a = await ctx.step('a', effect('a', input.x));
      await ctx.emit({ type: 'Added', data: a });
      const b = await ctx.step('b', effect('b', a * 2));
      await ctx.emit({ type: 'Added', data: b });
      const c = await ctx.step('c', effect('c', b + 1));
      return { a, b, c };
    },
  });
}

describe('journal replay', () => {
  it('never re-runs a journaled step when a run is resumed after a crash', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const ran: string[] = [];
    const wf = threeSteps(service, ran);
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepCompleted && (e.data as { name: string }).name === 'b');
    await expect(createRuntime({ store: crashing }).start(wf, { x: 5 }, { runId: 'r1' })).rejects.toBeInstanceOf(SimulatedCrash);
    expect(ran).toEqual(['a', 'b']);

    const info = await createRuntime({ store, workflows: [wf] }).resume('r1');
    expect(info.status).toBe('completed');
    expect(info.output).toEqual({ a: 5, b: 10, c: 11 });
    expect(info.state).toEqual({ n: 15 });
    expect(ran).toEqual(['a', 'b', 'c']);
    expect([...service.calls.values()].every((n) => n === 1)).toBe(true);
  });

  it('re-runs a started-but-unfinished step with the same idempotency key', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const ran: string[] = [];
    const wf = threeSteps(service, ran);
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === 'b');
    await expect(createRuntime({ store: crashing }).start(wf, { x: 1 }, { runId: 'r2' })).rejects.toBeInstanceOf(SimulatedCrash);
    const info = await createRuntime({ store, workflows: [wf] }).resume('r2');
    expect(info.status).toBe('completed');
    const starts = (await store.read('run-r2')).filter(
      (e) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === 'b',
    );
    expect(starts).toHaveLength(1);
    // The crash hit after StepStarted, before fn ran: fn ran once, under the key that was recorded.
    const key = (starts[0]?.data as { idempotencyKey: string } | undefined)?.idempotencyKey ?? '';
    expect(service.calls.get(key)).toBe(1);
  });

  it('keeps the idempotency key stable across retries and across a resume', async () => {
    const store = await makeStore();
    const keys: string[] = [];
    let calls = 0;
    const wf = defineWorkflow({
      name: 'flaky',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) =>
        ctx.step(
          'flaky',
          ({ idempotencyKey, attempt }) => {
            keys.push(idempotencyKey);
            calls++;
            if (attempt < 3) throw new Error(`boom ${attempt}`);
            return 'ok';
          },
          { retry: { attempts: 5, initialDelayMs: 1 } },
        ),
    });
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepFailed && (e.data as { attempt: number }).attempt === 2);
    await expect(createRuntime({ store: crashing, clock: fastClock() }).start(wf, null, { runId: 'k' })).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    const info = await createRuntime({ store, workflows: [wf], clock: fastClock() }).resume('k');
    expect(info.status).toBe('completed');
    expect(calls).toBe(3);
    expect(new Set(keys).size).toBe(1);
    const failed = (await store.read('run-k'))
      .filter((e) => e.type === RunEvents.StepFailed)
      .map((e) => e.data as { retryAt?: number; final: boolean });
    expect(failed.every((f) => !f.final && typeof f.retryAt === 'number')).toBe(true);
  });

  it('replays now/random/uuid/sleep exactly', async () => {
    const store = await makeStore();
    const seen: unknown[][] = [];
    const wf = defineWorkflow({
      name: 'values',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        const values = [await ctx.now(), await ctx.random(), await ctx.uuid()];
        await ctx.sleep(5);
        seen.push(values);
        await ctx.step('after', () => 1);
        return values;
      },
    });
    const crashing = crashAfter(store, (e) => e.type === RunEvents.ValueRecorded && (e.data as { kind: string }).kind === 'sleep');
    await expect(createRuntime({ store: crashing, clock: fastClock() }).start(wf, null, { runId: 'v' })).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
    const info = await createRuntime({ store, workflows: [wf], clock: fastClock(1_800_000_000_000) }).resume('v');
    expect(info.status).toBe('completed');
    expect(seen).toHaveLength(1);
    expect(info.output).toEqual([1_700_000_000_000, expect.any(Number), expect.any(String)]);
    const recorded = (await store.read('run-v'))
      .filter((e) => e.type === RunEvents.ValueRecorded)
      .map((e) => (e.data as { value: unknown }).value);
    expect(recorded.slice(0, 3)).toEqual(info.output);
    expect(recorded).toHaveLength(4);
  });

  it('stops with NonDeterminismError naming both calls, writing nothing', async () => {
    const store = await makeStore();
    const v1 = defineWorkflow({
      name: 'changing',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.step('charge-card', () => 1);
        await ctx.step('wait-forever', () => new Promise(() => {}), { timeoutMs: 20 });
      },
    });
    const crashing = crashAfter(store, (e) => e.type === RunEvents.StepStarted && (e.data as { name: string }).name === 'wait-forever');
    await expect(createRuntime({ store: crashing }).start(v1, null, { runId: 'nd' })).rejects.toBeInstanceOf(SimulatedCrash);
    const v2 = defineWorkflow({ ...v1, run: async (ctx) => void (await ctx.step('refund-card', () => 1)) });
    const before = await store.streamVersion('run-nd');
    const error = await createRuntime({ store, workflows: [v2] })
      .resume('nd')
      .catch((e) => e);
    expect(error).toBeInstanceOf(NonDeterminismError);
    expect(error.message).toContain('step "charge-card"');
    expect(error.message).toContain('step "refund-card"');
    expect(await store.streamVersion('run-nd')).toBe(before);
  });

  it('starting the same run id twice is idempotent', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const ran: string[] = [];
    const wf = threeSteps(service, ran);
    const runtime = createRuntime({ store });
    const [a, b] = await Promise.all([runtime.start(wf, { x: 2 }, { runId: 'same' }), runtime.start(wf, { x: 2 }, { runId: 'same' })]);
    expect(a.status).toBe('completed');
    expect(b.version).toBe(a.version);
    const again = await createRuntime({ store, workflows: [wf] }).start(wf, { x: 2 }, { runId: 'same' });
    expect(again.version).toBe(a.version);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect((await typesOf(store, 'same')).filter((t) => t === RunEvents.RunStarted)).toHaveLength(1);
  });

  it('lets only one of two workers advance a run', async () => {
    const store = await makeStore();
    const service = new FakeService();
    const ran: string[] = [];
    const wf = threeSteps(service, ran);
    const crashing = crashAfter(store, (e) => e.type === RunEvents.RunStarted);
    await expect(createRuntime({ store: crashing }).start(wf, { x: 3 }, { runId: 'w' })).rejects.toBeInstanceOf(SimulatedCrash);
    const [one, two] = await Promise.all([
      createRuntime({ store, workflows: [wf] }).resume('w'),
      createRuntime({ store, workflows: [wf] }).resume('w'),
    ]);
    const final = await createRuntime({ store, workflows: [wf] }).resume('w');
    expect(final.status).toBe('completed');
    expect([one.status, two.status]).toContain('completed');
    const types = await typesOf(store, 'w');
    expect(types.filter((t) => t === RunEvents.StepCompleted)).toHaveLength(3);
    expect(types.filter((t) => t === RunEvents.RunCompleted)).toHaveLength(1);
  });

  it('runs steps in parallel and replays them by call order', async () => {
    const store = await makeStore();
    let calls = 0;
    const wf = defineWorkflow({
      name: 'fan-out',
      initialState: [] as number[],
      apply: (s: number[], e) => [...s, e.data as number],
      run: async (ctx) => {
        const results = await Promise.all(
          [30, 10, 20].map((ms, i) =>
            ctx.step(
              `fetch-${i}`,
              () =>
                new Promise<number>((r) =>
                  setTimeout(() => {
                    calls++;
                    r(i);
                  }, ms),
                ),
            ),
          ),
        );
        await Promise.all(results.map((n) => ctx.emit({ type: 'Got', data: n })));
        return ctx.state;
      },
    });
    const crashing = crashAfter(store, (e) => e.type === 'Got' && e.data === 1);
    await expect(createRuntime({ store: crashing }).start(wf, null, { runId: 'par' })).rejects.toBeInstanceOf(SimulatedCrash);
    const info = await createRuntime({ store, workflows: [wf] }).resume('par');
    expect(info.status).toBe('completed');
    expect(info.output).toEqual([0, 1, 2]);
    expect(info.state).toEqual([0, 1, 2]);
    expect(calls).toBe(3);
  });

  it('lists runs and cancels one', async () => {
    const store = await makeStore();
    let release: () => void = () => {};
    const wf = defineWorkflow({
      name: 'slow',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) => {
        await ctx.step(
          'wait',
          ({ signal }) =>
            new Promise<void>((resolve, reject) => {
              release = resolve;
              signal.addEventListener('abort', () => reject(signal.reason));
            }),
        );
        await ctx.step('after', () => 1);
      },
    });
    const runtime = createRuntime({ store });
    await runtime.start(wf, null, { runId: 'c1', detach: true });
    await new Promise((r) => setTimeout(r, 20));
    expect((await runtime.list()).map((r) => [r.runId, r.status])).toEqual([['c1', 'running']]);
    const info = await runtime.cancel('c1', 'operator said so');
    release();
    expect(info.status).toBe('cancelled');
    expect(await runtime.list({ status: 'cancelled' })).toHaveLength(1);
    expect((await typesOf(store, 'c1')).includes(RunEvents.StepCompleted)).toBe(false);
  });
});

describe('shutdown', () => {
  it('closing a runtime mid-step records no failure; another runtime finishes the step under the same key', async () => {
    const store = await makeStore();
    const keys: string[] = [];
    let hang = true;
    const wf = defineWorkflow({
      name: 'closable',
      initialState: null,
      apply: (s) => s,
      run: async (ctx) =>
        ctx.step('long', ({ idempotencyKey, signal }) => {
          keys.push(idempotencyKey);
          if (!hang) return 'done';
          return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
        }),
    });
    const first = createRuntime({ store });
    await first.start(wf, null, { runId: 'sd', detach: true });
    await new Promise((r) => setTimeout(r, 20));
    await first.close();
    expect(await typesOf(store, 'sd')).toEqual([RunEvents.RunStarted, RunEvents.StepStarted]);
    hang = false;
    const info = await createRuntime({ store, workflows: [wf] }).resume('sd');
    expect(info.output).toBe('done');
    expect(new Set(keys).size).toBe(1);
  });
});
