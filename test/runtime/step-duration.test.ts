import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import { timelineOf } from '../../src/runtime/model/index.js';
import { toolStepsProjection } from '../../src/runtime/read-models.js';
import { crashAfter, makeStore, SimulatedCrash } from './helpers.js';

// How long a step took is how long the attempt that finished it ran. An attempt a crash left open runs again
// under its key on resume, without a start of its own: its end says when that run began (resumedAt), and the
// timeline, the tool-steps read model and the spans time it from there, not across the downtime.

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
/** Sets the wall clock (recordedAt's) to `s` seconds past noon. */
const to = (s: number) => void vi.setSystemTime(new Date(at(s)));

/** Books a hotel: the booking service answers at 3602 s (2 s after a start at 3600 s). */
const booking = defineWorkflow({
  name: 'booking',
  initialState: null,
  apply: (s: null) => s,
  run: async (ctx) => {
    await ctx.step('book-hotel', () => {
      to(3602);
      return 'HT-1';
    });
  },
});

afterEach(() => void vi.useRealTimers());

describe("a step's duration", () => {
  it('given a process that died while the step ran, when the run resumes an hour later, then the step took its 2 s, not the hour', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = await makeStore();
    // The process dies once the step's start is written: the step is left open.
    to(0);
    const dies = crashAfter(store, (e) => e.type === RunEvents.StepStarted);
    await expect(createRuntime({ store: dies }).start(booking, null, { runId: 'b' })).rejects.toBeInstanceOf(SimulatedCrash);
    // An hour later another process resumes it; the step runs again under its key, from 3600 s to 3602 s.
    to(3600);
    expect((await createRuntime({ store, workflows: [booking] }).resume('b')).status).toBe('completed');

    const events = await store.read('run-b');
    const completed = events.find((e) => e.type === RunEvents.StepCompleted);
    expect(completed).toMatchObject({ recordedAt: at(3602), data: { name: 'book-hotel', resumedAt: at(3600) } });
    const step = timelineOf(events).find((t) => t.type === RunEvents.StepCompleted);
    expect(step).toMatchObject({ summary: 'book-hotel → "HT-1"', durationMs: 2000 });

    let tool: ReturnType<typeof toolStepsProjection.evolve>;
    for (const e of events) if (toolStepsProjection.key(e) !== undefined) tool = toolStepsProjection.evolve(tool, e);
    expect(tool).toMatchObject({ tool: 'book-hotel', calls: 1, totalLatencyMs: 2000, maxLatencyMs: 2000, open: {} });
  });

  it('given a step that ran once, then its end names no resumption and it is timed from its start', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = await makeStore();
    to(3600);
    await createRuntime({ store }).start(booking, null, { runId: 'once' });
    const events = await store.read('run-once');
    const completed = events.find((e) => e.type === RunEvents.StepCompleted);
    expect(completed?.data).not.toHaveProperty('resumedAt');
    expect(timelineOf(events).find((t) => t.type === RunEvents.StepCompleted)?.durationMs).toBe(2000);
  });

  it('given a step left open by a crash, when a rollback settles it (runs it again to learn its outcome), then that run is timed too', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const hold = defineWorkflow({
      name: 'hold',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) => {
        await ctx.step(
          'hold-room',
          () => {
            to(3602);
            return 'H-1';
          },
          { compensate: () => undefined },
        );
      },
    });
    const store = await makeStore();
    to(0);
    const dies = crashAfter(store, (e) => e.type === RunEvents.StepStarted);
    await expect(createRuntime({ store: dies }).start(hold, null, { runId: 'h' })).rejects.toBeInstanceOf(SimulatedCrash);
    to(3600);
    expect((await createRuntime({ store, workflows: [hold] }).rollback('h', { to: 'start', reason: 'wrong dates' })).status).toBe(
      'rolled_back',
    );

    const events = await store.read('run-h');
    const settled = events.find((e) => e.type === RunEvents.StepCompleted);
    expect(settled).toMatchObject({ recordedAt: at(3602), data: { settling: true, resumedAt: at(3600) } });
    expect(timelineOf(events).find((t) => t.type === RunEvents.StepCompleted)?.durationMs).toBe(2000);
  });
});
