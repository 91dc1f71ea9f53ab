/**
 * OpenTelemetry for Rewind, derived from the log, through `@opentelemetry/api`
 * only: bring your own SDK (NodeSDK, a BasicTracerProvider, …) and register
 * it globally, or pass a tracer and a meter.
 *
 *   const telemetry = instrument(store, { projectionStatus: () => projections.status() });
 *   …
 *   await telemetry.stop();
 *
 * Why from the log and not from hooks in the runtime: every process that
 * drives a run (workers, the CLI, a server) writes the same events, so one
 * instrumented process sees all of them, with their real recordedAt times as
 * span start and end, and the runtime stays free of telemetry code. Spans are
 * emitted when they end, so a run's span appears once the run ends (or at
 * stop(), marked `rewind.incomplete`).
 *
 * Spans: `rewind.run <workflow>` (RunStarted → RunCompleted / RunFailed /
 * RunCancelled), inside it `rewind.step <name>` per attempt (StepStarted →
 * StepCompleted / StepFailed) and `rewind.rollback <label>` (RollbackRequested
 * → RolledBack), inside which `rewind.compensate <step>` (CompensationStarted →
 * CompensationCompleted / final CompensationFailed). When RunStarted carries
 * metadata.traceId and metadata.spanId (the span active when the run was
 * started; createRuntime({ store: withTraceIds(store) }) records them), the
 * run span is that span's child, in the caller's trace.
 *
 * Metrics: rewind.step.duration (histogram, ms), rewind.step.failures,
 * rewind.runs (by outcome), rewind.rollbacks, rewind.compensations (counters),
 * rewind.breaker.state (gauge: 0 closed, 1 half-open, 2 open) and, given a
 * projectionStatus function, rewind.projection.lag.events / .seconds (gauges).
 */
import {
  type Attributes,
  type Context,
  context,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { EventEnvelope } from '../../events/envelope.js';
import { BreakerEvents } from '../../runtime/breaker.js';
import type { SerializedError } from '../../runtime/errors.js';
import { asRunEvent, RunEvents } from '../../runtime/events.js';
import type { EventStore } from '../../store/types.js';

export { withTraceIds } from './trace-ids.js';

export const INSTRUMENTATION_NAME = 'rewind';

export interface InstrumentOptions {
  /** Default: trace.getTracer('rewind'), i.e. the globally registered provider. */
  tracer?: Tracer;
  /** Default: metrics.getMeter('rewind'). */
  meter?: Meter;
  /**
   * First global position to turn into telemetry. Default: the head of the log
   * when instrument() is called, i.e. only what happens from now on. 0 replays
   * the whole log into spans (with their original times).
   */
  from?: number;
  /** Reported as rewind.projection.lag.* when given; `Projections.status` fits. */
  projectionStatus?: () => Promise<Array<{ name: string; lagEvents: number; lagSeconds: number }>>;
}

export interface Instrumentation {
  /** Settles once the starting position is known: events appended after this are sure to be seen. */
  readonly ready: Promise<void>;
  /** Settles once every event up to this global position has been turned into telemetry. */
  until(position: number): Promise<void>;
  /** Last global position handled. */
  readonly position: number;
  /** Stops following the log and ends the spans still open (marked `rewind.incomplete`). */
  stop(): Promise<void>;
}

interface RunTrack {
  workflow?: string;
  span?: Span;
  rollback?: Span;
  /** Open step attempts and compensations, by idempotency key / compensated step key. */
  steps: Map<string, { span: Span; startedAt: number; name: string }>;
  compensations: Map<string, Span>;
}

const BREAKER_STATE = { closed: 0, half_open: 1, open: 2 } as const;

export function instrument(store: EventStore, options: InstrumentOptions = {}): Instrumentation {
  const tracer = options.tracer ?? trace.getTracer(INSTRUMENTATION_NAME);
  const meter = options.meter ?? metrics.getMeter(INSTRUMENTATION_NAME);
  const stepDuration = meter.createHistogram('rewind.step.duration', { unit: 'ms', description: 'Duration of a step attempt' });
  const stepFailures = meter.createCounter('rewind.step.failures', { description: 'Failed step attempts' });
  const runs = meter.createCounter('rewind.runs', { description: 'Runs that ended, by outcome' });
  const rollbacks = meter.createCounter('rewind.rollbacks', { description: 'Rollbacks requested, by trigger' });
  const compensations = meter.createCounter('rewind.compensations', { description: 'Compensations that ended, by outcome' });
  const breakerGauge = meter.createObservableGauge('rewind.breaker.state', {
    description: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
  });
  const breakers = new Map<string, number>();
  breakerGauge.addCallback((result) => {
    for (const [name, state] of breakers) result.observe(state, { 'rewind.breaker.name': name });
  });
  if (options.projectionStatus) {
    const status = options.projectionStatus;
    const lagEvents = meter.createObservableGauge('rewind.projection.lag.events', {
      description: 'Events between a projection and the head',
    });
    const lagSeconds = meter.createObservableGauge('rewind.projection.lag.seconds', {
      unit: 's',
      description: 'Age of the head event a projection has not applied',
    });
    meter.addBatchObservableCallback(
      async (result) => {
        for (const p of await status()) {
          result.observe(lagEvents, p.lagEvents, { 'rewind.projection.name': p.name });
          result.observe(lagSeconds, p.lagSeconds, { 'rewind.projection.name': p.name });
        }
      },
      [lagEvents, lagSeconds],
    );
  }

  const tracks = new Map<string, RunTrack>();
  const track = (runId: string): RunTrack => {
    let t = tracks.get(runId);
    if (!t) {
      t = { steps: new Map(), compensations: new Map() };
      tracks.set(runId, t);
    }
    return t;
  };
  const within = (span: Span | undefined): Context => (span ? trace.setSpan(context.active(), span) : context.active());
  const runAttrs = (runId: string, t: RunTrack): Attributes => ({
    'rewind.run.id': runId,
    ...(t.workflow ? { 'rewind.workflow': t.workflow } : {}),
  });

  function handle(event: EventEnvelope): void {
    if (event.streamId.startsWith('breaker-')) {
      const name = event.streamId.slice('breaker-'.length);
      if (event.type === BreakerEvents.BreakerOpened) breakers.set(name, BREAKER_STATE.open);
      else if (event.type === BreakerEvents.BreakerHalfOpened) breakers.set(name, BREAKER_STATE.half_open);
      else if (event.type === BreakerEvents.BreakerClosed) breakers.set(name, BREAKER_STATE.closed);
      return;
    }
    if (!event.streamId.startsWith('run-')) return;
    const runId = event.streamId.slice('run-'.length);
    const at = new Date(event.recordedAt);
    const t = track(runId);
    const e = asRunEvent(event);
    switch (e?.type) {
      case RunEvents.RunStarted: {
        const data = e.data;
        t.workflow = data.workflow;
        t.span = tracer.startSpan(
          `rewind.run ${data.workflow}`,
          {
            kind: SpanKind.INTERNAL,
            startTime: at,
            attributes: {
              ...runAttrs(runId, t),
              'rewind.workflow.version': data.workflowVersion,
              ...(data.forkedFrom ? { 'rewind.fork.run_id': data.forkedFrom.runId, 'rewind.fork.version': data.forkedFrom.version } : {}),
            },
          },
          callerContext(event),
        );
        break;
      }
      case RunEvents.StepStarted: {
        const data = e.data;
        const caller = trace.getSpanContext(callerContext(event));
        const span = tracer.startSpan(
          `rewind.step ${data.name}`,
          {
            startTime: at,
            // A step driven by another request (a resume, a worker) than the one that started the run: linked, not parented.
            ...(caller && caller.traceId !== t.span?.spanContext().traceId ? { links: [{ context: caller }] } : {}),
            attributes: {
              ...runAttrs(runId, t),
              'rewind.step.name': data.name,
              'rewind.step.seq': data.seq,
              'rewind.step.attempt': data.attempt,
              'rewind.step.idempotency_key': data.idempotencyKey,
            },
          },
          within(t.span),
        );
        t.steps.set(data.idempotencyKey, { span, startedAt: at.getTime(), name: data.name });
        break;
      }
      case RunEvents.StepCompleted:
      case RunEvents.StepFailed: {
        const data = e.data;
        const open = t.steps.get(data.idempotencyKey);
        if (!open) break;
        t.steps.delete(data.idempotencyKey);
        const failed = e.type === RunEvents.StepFailed ? e.data : undefined;
        const attrs: Attributes = { ...(t.workflow ? { 'rewind.workflow': t.workflow } : {}), 'rewind.step.name': data.name };
        // An attempt a crash left open ran again from resumedAt: the span shows when, the duration counts from then.
        const resumedAt = data.resumedAt === undefined ? undefined : new Date(data.resumedAt);
        if (resumedAt) open.span.addEvent('rewind.step.resumed', {}, resumedAt);
        stepDuration.record(Math.max(0, at.getTime() - (resumedAt?.getTime() ?? open.startedAt)), {
          ...attrs,
          'rewind.step.outcome': failed ? 'failed' : 'completed',
        });
        if (failed) {
          stepFailures.add(1, { ...attrs, 'rewind.trigger': failed.trigger, 'rewind.step.final': failed.final });
          open.span.setAttributes({ 'rewind.trigger': failed.trigger, 'rewind.step.final': failed.final });
          fail(open.span, failed.error, at);
        }
        open.span.end(at);
        break;
      }
      case RunEvents.RollbackRequested: {
        const data = e.data;
        rollbacks.add(1, { ...(t.workflow ? { 'rewind.workflow': t.workflow } : {}), 'rewind.rollback.trigger': data.trigger.kind });
        t.rollback = tracer.startSpan(
          `rewind.rollback ${data.label}`,
          {
            startTime: at,
            attributes: {
              ...runAttrs(runId, t),
              'rewind.rollback.reason': data.reason,
              'rewind.rollback.trigger': data.trigger.kind,
              ...(data.trigger.step ? { 'rewind.rollback.trigger_step': data.trigger.step } : {}),
              ...(data.trigger.error ? { 'rewind.rollback.trigger_error': data.trigger.error.message } : {}),
              'rewind.rollback.label': data.label,
              ...(data.unreached === undefined ? {} : { 'rewind.rollback.unreached': data.unreached }),
              'rewind.rollback.target_version': data.targetVersion,
              'rewind.rollback.after': data.after,
              ...(data.coordinator ? { 'rewind.rollback.coordinator': data.coordinator } : {}),
            },
          },
          within(t.span),
        );
        break;
      }
      case RunEvents.CompensationStarted: {
        const data = e.data;
        if (t.compensations.has(data.stepKey)) break; // a retry of the same compensation: one span from first try to outcome
        t.compensations.set(
          data.stepKey,
          tracer.startSpan(
            `rewind.compensate ${data.step}`,
            {
              startTime: at,
              attributes: { ...runAttrs(runId, t), 'rewind.step.name': data.step, 'rewind.step.idempotency_key': data.stepKey },
            },
            within(t.rollback ?? t.span),
          ),
        );
        break;
      }
      case RunEvents.CompensationCompleted:
      case RunEvents.CompensationFailed: {
        const data = e.data;
        const failed = e.type === RunEvents.CompensationFailed ? e.data : undefined;
        const span = t.compensations.get(data.stepKey);
        if (failed && !failed.final) {
          span?.addEvent('rewind.compensation.retry', { 'rewind.attempt': failed.attempt, 'exception.message': failed.error.message }, at);
          break;
        }
        compensations.add(1, {
          ...(t.workflow ? { 'rewind.workflow': t.workflow } : {}),
          'rewind.step.name': data.step,
          'rewind.compensation.outcome': failed ? 'failed' : 'completed',
        });
        if (!span) break;
        t.compensations.delete(data.stepKey);
        if (failed) fail(span, failed.error, at);
        span.end(at);
        break;
      }
      case RunEvents.Verified: {
        const data = e.data;
        t.rollback?.addEvent('rewind.verified', { 'rewind.step.name': data.step, 'rewind.verified.ok': data.ok }, at);
        break;
      }
      case RunEvents.NeedsAttention: {
        const data = e.data;
        t.rollback?.addEvent(
          'rewind.needs_attention',
          { 'rewind.step.name': data.step, 'rewind.stage': data.stage, 'exception.message': data.error.message },
          at,
        );
        break;
      }
      case RunEvents.RolledBack: {
        const data = e.data;
        if (t.rollback) {
          t.rollback.setAttribute('rewind.rollback.target_version', data.targetVersion);
          t.rollback.end(at);
          t.rollback = undefined;
        }
        t.span?.addEvent('rewind.rolled_back', { 'rewind.rollback.label': data.label, 'rewind.rollback.reason': data.reason }, at);
        break;
      }
      case RunEvents.RunCompleted:
      case RunEvents.RunFailed:
      case RunEvents.RunCancelled: {
        const outcome = e.type === RunEvents.RunCompleted ? 'completed' : e.type === RunEvents.RunFailed ? 'failed' : 'cancelled';
        runs.add(1, { ...(t.workflow ? { 'rewind.workflow': t.workflow } : {}), 'rewind.run.outcome': outcome });
        if (t.span) {
          t.span.setAttribute('rewind.run.outcome', outcome);
          if (e.type === RunEvents.RunFailed) fail(t.span, e.data.error, at);
        }
        endAll(t, at, false);
        tracks.delete(runId);
        break;
      }
    }
  }

  const controller = new AbortController();
  let position = 0;
  let waiters: Array<{ position: number; resolve: () => void }> = [];
  const settle = () => {
    const due = waiters.filter((w) => w.position <= position);
    waiters = waiters.filter((w) => w.position > position);
    for (const w of due) w.resolve();
  };
  let failure: unknown;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const started = (async () => {
    const from = options.from ?? (await store.headPosition()) + 1;
    position = from - 1;
    markReady();
    settle();
    for await (const event of store.subscribe({ from, signal: controller.signal })) {
      try {
        handle(event);
      } catch {
        // Telemetry must never stop the log being followed: a malformed event loses its span, nothing else.
      }
      position = event.position;
      settle();
    }
  })().catch((error) => {
    failure = error;
    markReady();
    for (const w of waiters) w.resolve();
    waiters = [];
  });

  return {
    ready,
    get position() {
      return position;
    },
    until(target: number): Promise<void> {
      if (failure) return Promise.reject(failure);
      if (target <= position) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ position: target, resolve }));
    },
    async stop(): Promise<void> {
      controller.abort();
      await started;
      const now = new Date();
      for (const t of tracks.values()) endAll(t, now, true);
      tracks.clear();
    },
  };
}

/** The caller's span, when the run was started inside one and the runtime recorded it. */
function callerContext(event: EventEnvelope): Context {
  const { traceId, spanId } = event.metadata as { traceId?: unknown; spanId?: unknown };
  if (typeof traceId !== 'string' || typeof spanId !== 'string') return context.active();
  return trace.setSpanContext(context.active(), { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
}

function fail(span: Span, error: SerializedError, at: Date): void {
  span.recordException({ name: error.name, message: error.message, ...(error.code ? { code: error.code } : {}) }, at);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

function endAll(t: RunTrack, at: Date, incomplete: boolean): void {
  const spans = [...t.steps.values()].map((s) => s.span).concat([...t.compensations.values()], t.rollback ? [t.rollback] : []);
  if (t.span) spans.push(t.span);
  for (const span of spans) {
    if (incomplete) span.setAttribute('rewind.incomplete', true);
    span.end(at);
  }
}
