import type { EventEnvelope } from '../../events/envelope.js';
import { timelineOf as linesOf, RunEvents } from '../../runtime/model/index.js';
import { colour, safe } from './output.js';

export interface TimelineEntry {
  version: number;
  type: string;
  recordedAt: string;
  /** Undone by a later rollback: still in the log, no longer in the effective history. */
  undone: boolean;
  summary: string;
  /** For a step's end: milliseconds since its start. */
  durationMs?: number;
}

/** A run's events as a person reads them (the run model's timeline), as `show` and `demo` print them. */
export function timelineOf(events: readonly EventEnvelope[]): TimelineEntry[] {
  return linesOf(events).map((t) => ({
    version: t.version,
    type: t.type,
    recordedAt: t.recordedAt,
    undone: t.status === 'rolled_back',
    summary: t.summary,
    ...(t.durationMs === undefined ? {} : { durationMs: t.durationMs }),
  }));
}

const TYPE_COLOUR: Record<string, (s: string) => string> = {
  [RunEvents.StepFailed]: colour.red,
  [RunEvents.CompensationFailed]: colour.red,
  [RunEvents.NeedsAttention]: colour.red,
  [RunEvents.RunFailed]: colour.red,
  [RunEvents.Checkpoint]: colour.blue,
  [RunEvents.RollbackRequested]: colour.magenta,
  [RunEvents.RolledBack]: colour.magenta,
  [RunEvents.CompensationStarted]: colour.yellow,
  [RunEvents.CompensationCompleted]: colour.yellow,
  [RunEvents.Verified]: colour.yellow,
  [RunEvents.RunCompleted]: colour.green,
  [RunEvents.WaitStarted]: colour.yellow,
  [RunEvents.WaitTimedOut]: colour.red,
  [RunEvents.StepCompleted]: colour.green,
};

export function renderTimeline(entries: readonly TimelineEntry[]): string {
  return entries
    .map((t) => {
      const paint = t.undone ? colour.dim : (TYPE_COLOUR[t.type] ?? ((s: string) => s));
      const mark = t.undone ? '↶' : ' ';
      const took = t.durationMs !== undefined ? colour.dim(` ${t.durationMs} ms`) : '';
      const summary = safe(t.summary);
      return `${String(t.version).padStart(4)} ${mark} ${paint(safe(t.type).padEnd(22))} ${t.undone ? colour.dim(summary) : summary}${took}`.trimEnd();
    })
    .join('\n');
}

export const STATUS_COLOUR: Record<string, (s: string) => string> = {
  completed: colour.green,
  running: colour.cyan,
  waiting: colour.yellow,
  rolling_back: colour.magenta,
  rolled_back: colour.magenta,
  needs_attention: colour.red,
  failed: colour.red,
  cancelled: colour.dim,
};
