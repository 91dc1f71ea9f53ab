import type { EventEnvelope } from '../../events/envelope.js';
import { RunEvents } from '../../runtime/index.js';
import { effectiveEvents } from '../../runtime/journal.js';
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

/** A run's events as a person reads them. Pure, so the CLI, API and tests agree on it. */
export function timelineOf(events: readonly EventEnvelope[]): TimelineEntry[] {
  const kept = new Set(effectiveEvents(events).map((e) => e.id));
  const started = new Map<string, number>();
  return events.map((e) => {
    const d = e.data as Record<string, any>;
    const entry: TimelineEntry = {
      version: e.version,
      type: e.type,
      recordedAt: e.recordedAt,
      undone: !kept.has(e.id) && e.type !== RunEvents.RolledBack,
      summary: summarise(e.type, d),
    };
    if (e.type === RunEvents.StepStarted) started.set(d.idempotencyKey, Date.parse(e.recordedAt));
    if (e.type === RunEvents.StepCompleted || e.type === RunEvents.StepFailed) {
      const from = started.get(d.idempotencyKey);
      if (from !== undefined) entry.durationMs = Date.parse(e.recordedAt) - from;
    }
    return entry;
  });
}

function summarise(type: string, d: Record<string, any>): string {
  switch (type) {
    case RunEvents.RunStarted:
      return `${d.workflow}@${d.workflowVersion} ${JSON.stringify(d.input)}`;
    case RunEvents.StepStarted:
      return `${d.name}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}`;
    case RunEvents.StepCompleted:
      return `${d.name} → ${d.result === undefined ? 'done' : JSON.stringify(d.result)}`;
    case RunEvents.StepFailed:
      return `${d.name}: ${d.error?.message}${d.final ? '' : ' (will retry)'}`;
    case RunEvents.ValueRecorded:
      return `${d.kind} = ${d.value}`;
    case RunEvents.ChangeRecorded:
      return `takes change "${d.change}"`;
    case RunEvents.Checkpoint:
      return `"${d.label}"`;
    case RunEvents.RollbackRequested:
    case RunEvents.RolledBack:
      return `to "${d.label}" (v${d.targetVersion}): ${d.reason}`;
    case RunEvents.CompensationStarted:
    case RunEvents.CompensationCompleted:
      return String(d.step);
    case RunEvents.CompensationFailed:
      return `${d.step}: ${d.error?.message}`;
    case RunEvents.Verified:
      return `${d.step}: ${d.ok ? 'ok' : `NOT ok${d.error ? `: ${d.error.message}` : ''}`}`;
    case RunEvents.NeedsAttention:
      return `${d.stage} of ${d.step} keeps failing: ${d.error?.message}`;
    case RunEvents.ResolvedByHand:
    case RunEvents.CompensationRetried:
      return `${d.stepKey}${d.note ? `: ${d.note}` : ''}`;
    case RunEvents.RunCompleted:
      return d.output === undefined ? '' : JSON.stringify(d.output);
    case RunEvents.RunFailed:
      return String(d.error?.message ?? '');
    case RunEvents.RunCancelled:
      return String(d.reason);
    default:
      return JSON.stringify(d);
  }
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
  rolling_back: colour.magenta,
  rolled_back: colour.magenta,
  needs_attention: colour.red,
  failed: colour.red,
  cancelled: colour.dim,
};
