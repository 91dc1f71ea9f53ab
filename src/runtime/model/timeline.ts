import type { EventEnvelope } from '../../events/envelope.js';
import { asRunEvent, RunEvents } from '../events.js';
import { type EventMark, markOf, marksOf } from './history.js';

// A run's events as a person reads them, one line each: what the CLI's
// timeline prints and the debugger's rows show (each beside the event's type,
// so a line says what the type does not: CompensationCompleted "book-hotel").

export interface TimelineEntry {
  version: number;
  type: string;
  recordedAt: string;
  status: EventMark;
  /** The marker that took it out of the effective history: it stays in the log. */
  undoneBy?: number;
  summary: string;
  /** For a step's end: how long the attempt that ended took (from its start, or from its resumption after a crash). */
  durationMs?: number;
}

/** How a value inside a summary is written: JSON by default; a narrow view may shorten it. */
export type ValueFormat = (value: unknown) => string;

const json: ValueFormat = (value) => JSON.stringify(value) ?? '';

/** One event in a line, its values written by `value`. */
export function summaryOf(event: EventEnvelope, value: ValueFormat = json): string {
  const e = asRunEvent(event);
  if (!e) return value(event.data);
  switch (e.type) {
    case RunEvents.RunStarted: {
      const d = e.data;
      return `${d.workflow}@${d.workflowVersion} ${value(d.input)}${d.forkedFrom ? ` · fork of ${d.forkedFrom.runId} at v${d.forkedFrom.version}` : ''}`;
    }
    case RunEvents.ForkedFrom:
      return `copied from ${e.data.runId} v${e.data.version}`;
    case RunEvents.StepStarted: {
      const { name, attempt, irreversible, settling } = e.data;
      const notes = [
        ...(attempt > 1 ? [`attempt ${attempt}`] : []),
        ...(irreversible ? ['irreversible: the point of no return'] : []),
        ...(settling ? ['settling: run again under its key'] : []),
      ];
      return `${name}${notes.length ? ` (${notes.join('; ')})` : ''}`;
    }
    case RunEvents.WaitStarted: {
      const { name, approval, timeoutAt } = e.data;
      const what = approval
        ? `approval "${approval.label}"${approval.details === undefined ? '' : ` ${value(approval.details)}`}`
        : `signal "${name}"`;
      return `${what}${timeoutAt === undefined ? '' : ` until ${new Date(timeoutAt).toISOString()}`}`;
    }
    case RunEvents.SignalReceived: {
      const { name, payload, actor, invalid } = e.data;
      return `${name} ← ${value(payload)}${actor ? ` from ${actor}` : ''}${invalid ? ` (invalid, still waiting: ${invalid.join('; ')})` : ''}`;
    }
    case RunEvents.ChangeRecorded:
      return `takes change "${e.data.change}"`;
    case RunEvents.WaitTimedOut:
      return `no signal "${e.data.name}" in time`;
    case RunEvents.StepCompleted:
      return `${e.data.name} → ${e.data.result === undefined ? 'done' : value(e.data.result)}`;
    case RunEvents.StepFailed:
      return `${e.data.name}: ${e.data.error?.message ?? 'failed'}${e.data.final ? '' : ' (will retry)'}`;
    case RunEvents.ValueRecorded:
      return `${e.data.kind} = ${e.data.value}`;
    case RunEvents.Checkpoint:
      return `"${e.data.label}"`;
    case RunEvents.RollbackRequested:
    case RunEvents.RolledBack: {
      const { label, targetVersion, unreached, reason } = e.data;
      const instead = unreached === undefined ? '' : ` instead of "${unreached}", which the run never reached`;
      return `to "${label}" (v${targetVersion})${instead}: ${reason}`;
    }
    case RunEvents.CompensationStarted:
      return `${e.data.step}${e.data.attempt > 1 ? ` (attempt ${e.data.attempt})` : ''}`;
    case RunEvents.CompensationCompleted:
      return e.data.step;
    case RunEvents.CompensationFailed:
      return `${e.data.step}: ${e.data.error?.message ?? 'failed'}${e.data.final ? '' : ' (will retry)'}`;
    case RunEvents.Verified:
      return `${e.data.step}: ${e.data.ok ? 'ok' : `NOT ok${e.data.error ? `: ${e.data.error.message}` : ''}`}`;
    case RunEvents.NeedsAttention:
      return `${e.data.stage} of ${e.data.step} keeps failing: ${e.data.error?.message ?? ''}`;
    case RunEvents.CompensationRetried:
    case RunEvents.ResolvedByHand:
      return `${e.data.stepKey}${e.data.note ? `: ${e.data.note}` : ''}`;
    case RunEvents.RunCompleted:
      return e.data.output === undefined ? 'done' : value(e.data.output);
    case RunEvents.RunFailed:
      return e.data.error?.message ?? '';
    case RunEvents.RunCancelled:
      return e.data.reason;
  }
}

/** Every event of a run with its mark, its line and, for a step's end, how long the step took. */
export function timelineOf(events: readonly EventEnvelope[], value: ValueFormat = json): TimelineEntry[] {
  const marks = marksOf(events);
  const started = new Map<string, number>();
  return events.map((event) => {
    const entry: TimelineEntry = {
      version: event.version,
      type: event.type,
      recordedAt: event.recordedAt,
      ...markOf(event, marks),
      summary: summaryOf(event, value),
    };
    const e = asRunEvent(event);
    if (e?.type === RunEvents.StepStarted) started.set(e.data.idempotencyKey, Date.parse(e.recordedAt));
    if (e?.type === RunEvents.StepCompleted || e?.type === RunEvents.StepFailed) {
      // A crash left the attempt open and it ran again: timed from then, not across the downtime.
      const from = e.data.resumedAt === undefined ? started.get(e.data.idempotencyKey) : Date.parse(e.data.resumedAt);
      if (from !== undefined) entry.durationMs = Date.parse(e.recordedAt) - from;
    }
    return entry;
  });
}
