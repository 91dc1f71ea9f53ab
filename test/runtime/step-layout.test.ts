import { describe, expect, it, vi } from 'vitest';
import type { EventEnvelope } from '../../src/events/envelope.js';
import { ConcurrencyError } from '../../src/events/errors.js';
import { isRunEvent } from '../../src/runtime/events.js';
import { createRuntime, defineWorkflow, RunConflictError, RunEvents } from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { makeStore, SimulatedCrash } from './helpers.js';

// What a run writes, append by append: one commit per step. A step's
// completion, and whatever the code did before the next step (events,
// values, checkpoints), ride in the append that starts the next step; the
// last one rides with the run's end. A start is written before its step's
// function runs, so a step that may have started is always in the log.

/** The store, recording each append to a run stream as the list of its event types (name-suffixed for steps). */
function appendsOf(store: EventStore): { store: EventStore; appends: string[][] } {
  const appends: string[][] = [];
  const name = (e: EventEnvelope) => {
    const step = (e.data as { name?: unknown } | null)?.name;
    return e.type.startsWith('Step') && typeof step === 'string' ? `${e.type}:${step}` : e.type;
  };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') {
        return async (...args: Parameters<EventStore['append']>) => {
          const result = await target.append(...args);
          if (args[0].startsWith('run-')) appends.push(result.events.map(name));
          return result;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, appends };
}

const tenSteps = defineWorkflow({
  name: 'ten-steps',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx) => {
    let sum = 0;
    for (let i = 0; i < 10; i++) sum += await ctx.step(`s${i}`, () => i);
    return sum;
  },
});

describe('one commit per step', () => {
  it('a lone run of 10 steps is 11 appends: the run starts with its first step and ends with its last', async () => {
    const { store, appends } = appendsOf(await makeStore());
    const info = await createRuntime({ store }).start(tenSteps, null, { runId: 'ten' });
    expect(info.status).toBe('completed');
    expect(info.output).toBe(45);
    expect(appends).toEqual([
      ['RunStarted', 'StepStarted:s0'],
      ...Array.from({ length: 9 }, (_, i) => [`StepCompleted:s${i}`, `StepStarted:s${i + 1}`]),
      ['StepCompleted:s9', 'RunCompleted'],
    ]);
  });

  it('events, values, checkpoints and changes between two steps ride with the next step start', async () => {
    const { store, appends } = appendsOf(await makeStore());
    const wf = defineWorkflow({
      name: 'between',
      initialState: 0,
      apply: (s: number) => s + 1,
      run: async (ctx) => {
        await ctx.step('a', () => 1);
        await ctx.emit({ type: 'Noted', data: 1 });
        await ctx.now();
        await ctx.checkpoint('after-a');
        await ctx.changed('v2');
        await ctx.step('b', () => 2);
        return ctx.state;
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'between' });
    expect(info.status).toBe('completed');
    expect(appends).toEqual([
      ['RunStarted', 'StepStarted:a'],
      ['StepCompleted:a', 'Noted', 'ValueRecorded', 'Checkpoint', 'ChangeRecorded', 'StepStarted:b'],
      ['StepCompleted:b', 'RunCompleted'],
    ]);
    // The checkpoint's index names the version it was written at.
    const events = await store.read('run-between');
    const checkpoint = events.find((e) => isRunEvent(e, RunEvents.Checkpoint));
    expect(checkpoint?.version).toBe(6);
    expect(checkpoint?.data).toMatchObject({ label: 'after-a', index: { 'after-a': 6 } });
  });

  it('a fact that rides with the next step start keeps the time it happened, not the time of that commit', async () => {
    // The wall clock (recordedAt's clock) under the test's control: the code's own work between steps takes minutes.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
      const to = (s: number) => vi.setSystemTime(new Date(at(s)));
      const store = await makeStore();
      const wf = defineWorkflow({
        name: 'slow-between',
        initialState: null,
        apply: (s: null) => s,
        run: async (ctx) => {
          await ctx.step('fetch', () => void to(1));
          to(2);
          await ctx.emit({ type: 'Noted', data: null });
          to(32);
          await ctx.now();
          to(62);
          await ctx.step('save', () => void to(63));
        },
      });
      to(0);
      expect((await createRuntime({ store }).start(wf, null, { runId: 'slow' })).status).toBe('completed');
      const times = (await store.read('run-slow')).map((e) => [e.type, e.recordedAt]);
      expect(times).toEqual([
        ['RunStarted', at(0)],
        ['StepStarted', at(0)],
        ['StepCompleted', at(1)],
        ['Noted', at(2)],
        ['ValueRecorded', at(32)],
        ['StepStarted', at(62)],
        ['StepCompleted', at(63)],
        ['RunCompleted', at(63)],
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a run that fails with no step is one append', async () => {
    const { store, appends } = appendsOf(await makeStore());
    const wf = defineWorkflow({
      name: 'fails-at-once',
      initialState: null,
      apply: (s: null) => s,
      run: async () => {
        throw new Error('no');
      },
    });
    expect((await createRuntime({ store }).start(wf, null, { runId: 'f' })).status).toBe('failed');
    expect(appends).toEqual([['RunStarted', 'RunFailed']]);
  });

  it('beside a sibling still running, a completion is written at once', async () => {
    const { store, appends } = appendsOf(await makeStore());
    let release = () => {};
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const wf = defineWorkflow({
      name: 'siblings',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        const fast = ctx
          .step('fast', () => 'f')
          .then((v) => {
            release();
            return v;
          });
        return Promise.all([fast, ctx.step('slow', () => slow.then(() => 's'))]);
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'siblings' });
    expect(info.output).toEqual(['f', 's']);
    expect(appends).toEqual([
      ['RunStarted', 'StepStarted:fast', 'StepStarted:slow'],
      ['StepCompleted:fast'],
      ['StepCompleted:slow', 'RunCompleted'],
    ]);
  });

  it('the starts of steps called together are one append', async () => {
    const { store, appends } = appendsOf(await makeStore());
    const wf = defineWorkflow({
      name: 'fan-out',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.step('plan', () => 3);
        return Promise.all(['p0', 'p1', 'p2'].map((name) => ctx.step(name, () => name)));
      },
    });
    const info = await createRuntime({ store }).start(wf, null, { runId: 'fan-out' });
    expect(info.output).toEqual(['p0', 'p1', 'p2']);
    expect(appends).toEqual([
      ['RunStarted', 'StepStarted:plan'],
      ['StepCompleted:plan', 'StepStarted:p0', 'StepStarted:p1', 'StepStarted:p2'],
      ['StepCompleted:p0', 'StepCompleted:p1', 'StepCompleted:p2'],
      ['RunCompleted'],
    ]);
  });

  it('nothing is held back while a run sleeps: its wake-up time is in the log', async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'sleeper',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.step('a', () => 1);
        await ctx.sleep(200);
        return 'woke';
      },
    });
    const running = createRuntime({ store }).start(wf, null, { runId: 'sleeper' });
    await new Promise((r) => setTimeout(r, 100));
    const types = (await store.read('run-sleeper')).map((e) => e.type);
    expect(types).toEqual([RunEvents.RunStarted, RunEvents.StepStarted, RunEvents.StepCompleted, RunEvents.ValueRecorded]);
    expect((await running).output).toBe('woke');
  });

  it('a run told to stop writes the completion it holds before it rests', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store });
    const wf = defineWorkflow({
      name: 'stopped',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.step('a', () => {
          void runtime.abandon('stopped');
          return 'a-done';
        });
        await ctx.step('b', () => 'never');
        return 'unreached';
      },
    });
    const info = await runtime.start(wf, null, { runId: 'stopped' });
    expect(info.status).toBe('running');
    const events = await store.read('run-stopped');
    expect(events.map((e) => e.type)).toEqual([RunEvents.RunStarted, RunEvents.StepStarted, RunEvents.StepCompleted]);
    expect(events[2]?.data).toMatchObject({ name: 'a', result: 'a-done' });
  });

  it('a crash loses only what no effect depended on: the step whose completion was held runs again under its key', async () => {
    const store = await makeStore();
    const keys: string[] = [];
    const wf = defineWorkflow({
      name: 'held',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        const a = await ctx.step('a', ({ idempotencyKey }) => {
          keys.push(idempotencyKey);
          return 1;
        });
        return ctx.step('b', () => a + 1);
      },
    });
    // The process dies as b's start (with a's completion) is being written: neither reaches the log.
    const refusing = new Proxy(store, {
      get(target, prop) {
        if (prop === 'append')
          return async (...args: Parameters<EventStore['append']>) => {
            if (args[1].some((e) => e.type === RunEvents.StepCompleted)) throw new SimulatedCrash('died mid-append');
            return target.append(...args);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await expect(createRuntime({ store: refusing }).start(wf, null, { runId: 'held' })).rejects.toBeInstanceOf(SimulatedCrash);
    expect((await store.read('run-held')).map((e) => e.type)).toEqual([RunEvents.RunStarted, RunEvents.StepStarted]);
    const info = await createRuntime({ store, workflows: [wf] }).resume('held');
    expect(info.output).toBe(2);
    expect(keys).toEqual(['held:0:a', 'held:0:a']);
  });
});

describe('a start written with the first step', () => {
  it('a second start of the same run in one runtime joins the first', async () => {
    const store = await makeStore();
    const runtime = createRuntime({ store });
    const [one, two] = await Promise.all([
      runtime.start(tenSteps, null, { runId: 'twice' }),
      runtime.start(tenSteps, null, { runId: 'twice' }),
    ]);
    expect(one.output).toBe(45);
    expect(two.output).toBe(45);
    expect((await store.read('run-twice')).filter((e) => e.type === RunEvents.RunStarted)).toHaveLength(1);
  });

  it('a start that finds the run written by another process joins it, or is refused when its input differs', async () => {
    const store = await makeStore();
    const wf = defineWorkflow({
      name: 'echo',
      initialState: null,
      apply: (s: null) => s,
      run: (ctx, input: { n: number }) => ctx.step('echo', () => input.n),
    });
    await createRuntime({ store }).start(wf, { n: 1 }, { runId: 'e' });
    expect((await createRuntime({ store }).start(wf, { n: 1 }, { runId: 'e' })).output).toBe(1);
    const refused = await createRuntime({ store })
      .start(wf, { n: 2 }, { runId: 'e' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RunConflictError);
    expect(refused).not.toBeInstanceOf(ConcurrencyError);
    expect((await store.read('run-e')).map((e) => e.type)).toEqual([
      RunEvents.RunStarted,
      RunEvents.StepStarted,
      RunEvents.StepCompleted,
      RunEvents.RunCompleted,
    ]);
  });
});
