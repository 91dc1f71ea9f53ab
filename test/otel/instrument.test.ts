import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, type ContextManager, context, type HrTime, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, defineWorkflow, RunEvents } from '../../src/runtime/index.js';
import type { EventStore } from '../../src/store/types.js';
import { type Instrumentation, instrument, withTraceIds } from '../../src/surfaces/otel/index.js';
import { fastClock, makeStore } from '../runtime/helpers.js';
import { FakeMeter } from './fake-meter.js';

const ms = (t: HrTime | undefined) => (t ? t[0] * 1000 + Math.round(t[1] / 1e6) : Number.NaN);

let open: Array<{ telemetry: Instrumentation; store: EventStore }> = [];
afterEach(async () => {
  for (const { telemetry, store } of open) {
    await telemetry.stop();
    await store.close();
  }
  open = [];
});

async function setup(
  options: { from?: number; projectionStatus?: () => Promise<Array<{ name: string; lagEvents: number; lagSeconds: number }>> } = {},
) {
  const store = await makeStore();
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const fake = new FakeMeter();
  const telemetry = instrument(store, { tracer: provider.getTracer('rewind-test'), meter: fake.meter, ...options });
  open.push({ telemetry, store });
  await telemetry.ready;
  const flush = async () => telemetry.until(await store.headPosition());
  const span = (name: string) => exporter.getFinishedSpans().find((s) => s.name === name) as ReadableSpan;
  return { store, exporter, fake, telemetry, flush, span };
}

/** book → checkpoint → pay (fails twice, then the policy rolls back to the checkpoint and the retry succeeds). */
function trip(world: { payAttempts: number; refunds: string[] }) {
  return defineWorkflow({
    name: 'trip',
    initialState: null,
    apply: (s: null) => s,
    onFailure: { rollbackTo: 'booked' },
    run: async (ctx) => {
      await ctx.step('book', () => 'hotel-1');
      await ctx.checkpoint('booked');
      await ctx.step('hold', () => 'hold-1', { compensate: (r) => void world.refunds.push(r) });
      const paid = await ctx.step(
        'pay',
        () => {
          if (++world.payAttempts <= 2) throw new Error('card declined');
          return 'paid';
        },
        { retry: { attempts: 2, initialDelayMs: 1 } },
      );
      return paid;
    },
  });
}

describe('instrument(store)', () => {
  it('turns runs, step attempts, rollbacks and compensations into spans with the log times', async () => {
    const { store, exporter, fake, flush, span } = await setup();
    const world = { payAttempts: 0, refunds: [] as string[] };
    const runtime = createRuntime({ store, clock: fastClock(Date.now()) });
    const run = await runtime.start(trip(world), null, { runId: 't1' });
    expect(run.status).toBe('completed');
    await flush();

    const runSpan = span('rewind.run trip');
    expect(runSpan.attributes).toMatchObject({ 'rewind.run.id': 't1', 'rewind.workflow': 'trip', 'rewind.run.outcome': 'completed' });
    const events = await store.read('run-t1');
    expect(ms(runSpan.startTime)).toBe(Date.parse(events[0]?.recordedAt as string));
    expect(ms(runSpan.endTime)).toBe(Date.parse(events.at(-1)?.recordedAt as string));

    const steps = exporter.getFinishedSpans().filter((s) => s.name.startsWith('rewind.step '));
    // book, hold, pay ×2 (failed), rollback, then hold and pay again on the retried path (book replays).
    expect(steps.map((s) => s.name)).toEqual([
      'rewind.step book',
      'rewind.step hold',
      'rewind.step pay',
      'rewind.step pay',
      'rewind.step hold',
      'rewind.step pay',
    ]);
    for (const s of steps) {
      expect(s.parentSpanContext?.spanId).toBe(runSpan.spanContext().spanId);
      expect(s.spanContext().traceId).toBe(runSpan.spanContext().traceId);
    }
    const firstStarted = events.find((e) => e.type === RunEvents.StepStarted);
    const firstDone = events.find((e) => e.type === RunEvents.StepCompleted);
    expect(ms(steps[0]?.startTime)).toBe(Date.parse(firstStarted?.recordedAt as string));
    expect(ms(steps[0]?.endTime)).toBe(Date.parse(firstDone?.recordedAt as string));
    const failedPay = steps[3] as ReadableSpan;
    expect(failedPay.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'card declined' });
    expect(failedPay.attributes).toMatchObject({ 'rewind.step.attempt': 2, 'rewind.step.final': true, 'rewind.trigger': 'step-failed' });
    expect(failedPay.events.map((e) => e.name)).toContain('exception');

    const rollback = span('rewind.rollback booked');
    expect(rollback.attributes).toMatchObject({
      'rewind.rollback.trigger': 'step-failed',
      'rewind.rollback.trigger_step': 'pay',
      'rewind.rollback.reason': 'card declined',
      'rewind.rollback.label': 'booked',
    });
    expect(rollback.parentSpanContext?.spanId).toBe(runSpan.spanContext().spanId);
    const compensation = span('rewind.compensate hold');
    expect(compensation.parentSpanContext?.spanId).toBe(rollback.spanContext().spanId);
    expect(world.refunds).toEqual(['hold-1']);

    expect(fake.of('rewind.step.duration')).toHaveLength(6);
    expect(fake.sum('rewind.step.failures', { 'rewind.step.name': 'pay' })).toBe(2);
    expect(fake.sum('rewind.rollbacks', { 'rewind.rollback.trigger': 'step-failed', 'rewind.workflow': 'trip' })).toBe(1);
    expect(fake.sum('rewind.compensations', { 'rewind.compensation.outcome': 'completed' })).toBe(1);
    expect(fake.sum('rewind.runs', { 'rewind.run.outcome': 'completed' })).toBe(1);
  });

  it('a step attempt a crash left open and a resume ran again is timed from its resumption, marked on its span', async () => {
    const { store, fake, flush, span } = await setup();
    const noon = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s)).toISOString();
    const step = { seq: 0, name: 'book-hotel', idempotencyKey: 'b:0:book-hotel' };
    await store.append('run-b', [
      { type: RunEvents.RunStarted, data: { runId: 'b', workflow: 'booking', workflowVersion: '1', input: null }, recordedAt: noon(0) },
      { type: RunEvents.StepStarted, data: { ...step, attempt: 1 }, recordedAt: noon(0) },
      // The process died; an hour later the attempt ran again, for 2 s.
      { type: RunEvents.StepCompleted, data: { ...step, result: 'HT-1', resumedAt: noon(3600) }, recordedAt: noon(3602) },
    ]);
    await flush();
    const booked = span('rewind.step book-hotel');
    expect(booked.events.map((e) => [e.name, ms(e.time)])).toEqual([['rewind.step.resumed', Date.parse(noon(3600))]]);
    expect(fake.of('rewind.step.duration').map((r) => r.value)).toEqual([2000]);
  });

  it("an operator's rollback is a span with its reason and trigger", async () => {
    const { store, fake, flush, span } = await setup();
    const world = { payAttempts: 10, refunds: [] as string[] };
    const runtime = createRuntime({ store });
    await runtime.start(trip(world), null, { runId: 't2' });
    await runtime.rollback('t2', { to: 'booked', reason: 'wrong dates' });
    await flush();
    expect(span('rewind.rollback booked').attributes).toMatchObject({
      'rewind.rollback.reason': 'wrong dates',
      'rewind.rollback.trigger': 'requested',
      'rewind.rollback.after': 'stop',
    });
    expect(fake.sum('rewind.rollbacks', { 'rewind.rollback.trigger': 'requested' })).toBe(1);
  });

  it('a run started inside a span joins its trace through metadata.traceId / spanId', async () => {
    const { store, flush, span } = await setup();
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const spanId = 'b7ad6b7169203331';
    await store.append('run-traced', [
      {
        type: RunEvents.RunStarted,
        data: { runId: 'traced', workflow: 'w', workflowVersion: '1', input: null },
        metadata: { traceId, spanId },
      },
      { type: RunEvents.RunCancelled, data: { reason: 'test' } },
    ]);
    await flush();
    const run = span('rewind.run w');
    expect(run.spanContext().traceId).toBe(traceId);
    expect(run.parentSpanContext?.spanId).toBe(spanId);
    expect(run.attributes['rewind.run.outcome']).toBe('cancelled');
  });

  it('reports breaker state and projection lag as gauges', async () => {
    const { store, fake, flush } = await setup({
      projectionStatus: async () => [{ name: 'runs-by-status', lagEvents: 3, lagSeconds: 1.5 }],
    });
    const wf = defineWorkflow({
      name: 'flaky',
      initialState: null,
      apply: (s: null) => s,
      run: async (ctx) =>
        ctx.step(
          'call',
          () => {
            throw new Error('down');
          },
          { breaker: 'payments' },
        ),
    });
    const runtime = createRuntime({ store, breakers: { payments: { failureThreshold: 1, cooldownMs: 60_000 } } });
    expect((await runtime.start(wf, null)).status).toBe('failed');
    await flush();
    const gauges = await fake.collect();
    expect(gauges).toContainEqual({ instrument: 'rewind.breaker.state', value: 2, attributes: { 'rewind.breaker.name': 'payments' } });
    expect(gauges).toContainEqual({
      instrument: 'rewind.projection.lag.events',
      value: 3,
      attributes: { 'rewind.projection.name': 'runs-by-status' },
    });
    expect(gauges).toContainEqual({
      instrument: 'rewind.projection.lag.seconds',
      value: 1.5,
      attributes: { 'rewind.projection.name': 'runs-by-status' },
    });
    expect(fake.sum('rewind.runs', { 'rewind.run.outcome': 'failed' })).toBe(1);
  });

  it('from 0 replays history already in the log; stop() ends the spans still open, marked incomplete', async () => {
    const store = await makeStore();
    await store.append('run-old', [
      { type: RunEvents.RunStarted, data: { runId: 'old', workflow: 'w', workflowVersion: '1', input: null } },
      { type: RunEvents.StepStarted, data: { seq: 0, name: 'slow', idempotencyKey: 'old:0:slow', attempt: 1 } },
    ]);
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const telemetry = instrument(store, { tracer: provider.getTracer('t'), from: 0 });
    await telemetry.until(2);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await telemetry.stop();
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.attributes['rewind.incomplete']])).toEqual([
      ['rewind.step slow', true],
      ['rewind.run w', true],
    ]);
    await store.close();
  });

  it('uses the global tracer when none is given (API only: a no-op without an SDK)', async () => {
    const store = await makeStore();
    const telemetry = instrument(store);
    await telemetry.ready;
    await store.append('run-x', [{ type: RunEvents.RunStarted, data: { runId: 'x', workflow: 'w', workflowVersion: '1', input: null } }]);
    await telemetry.until(await store.headPosition());
    expect(trace.getActiveSpan()).toBeUndefined();
    await telemetry.stop();
    await store.close();
  });
});

/** What a real SDK registers (AsyncLocalStorageContextManager), in a few lines: context.with() carries across awaits. */
class AlsContextManager implements ContextManager {
  readonly #als = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#als.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

describe('withTraceIds(store)', () => {
  afterEach(() => {
    context.disable();
  });

  it("records the active span's trace in every event of a run, and the run span joins that trace", async () => {
    context.setGlobalContextManager(new AlsContextManager());
    const { store, exporter, flush, span } = await setup();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('app');
    const runtime = createRuntime({ store: withTraceIds(store) });
    const world = { payAttempts: 10, refunds: [] as string[] };
    const request = await tracer.startActiveSpan('POST /trips', async (s) => {
      await runtime.start(trip(world), null, { runId: 'traced-run' });
      s.end();
      return s.spanContext();
    });
    const events = await store.read('run-traced-run');
    expect(events.length).toBeGreaterThan(3);
    for (const e of events) expect(e.metadata).toMatchObject({ traceId: request.traceId, spanId: request.spanId });

    // Outside any span nothing is added.
    await runtime.rollback('traced-run', { to: 'booked', reason: 'no span here' });
    expect((await store.read('run-traced-run')).at(-1)?.metadata.traceId).toBeUndefined();

    await flush();
    const run = span('rewind.run trip');
    expect(run.spanContext().traceId).toBe(request.traceId);
    expect(run.parentSpanContext?.spanId).toBe(request.spanId);
  });
});
