// What the debugger shows, over the run model it shares with the runtime and
// the CLI (src/runtime/model: no DOM, no Node): how a row is drawn, and how
// values, times and counts are written. No DOM and no fetch here either.
import { asRunEvent, type EventEnvelope, type RunEventType, type RunStatus, timelineOf } from '../../../runtime/model/index.js';

export {
  alignRuns,
  changeList,
  diffState,
  type EventEnvelope,
  effectiveAt,
  formatPath,
  historyOf,
  isJsonObject,
  journalStateAt,
  type ReactionStatus,
  type Relation,
  RUN_STATUSES,
  type RunInfo,
  type RunStatus,
  type RunSummary,
  type StateChange,
  type StatePath,
  sameJson,
  summaryOf,
} from '../../../runtime/model/index.js';

/** How a row is drawn. */
export type Kind =
  | 'start'
  | 'step'
  | 'ok'
  | 'fail'
  | 'value'
  | 'checkpoint'
  | 'rollback'
  | 'marker'
  | 'comp'
  | 'attention'
  | 'end'
  | 'endfail'
  | 'domain';

export interface Row {
  event: EventEnvelope;
  kind: Kind;
  /** 'rolled_back': a later RolledBack marker took it out of the effective history; it stays in the log. */
  status: 'effective' | 'rolled_back' | 'marker';
  /** The version of the marker that undid it. */
  undoneBy?: number;
  summary: string;
  /** For a step's end: milliseconds since its start. */
  durationMs?: number;
}

const KINDS: Record<RunEventType, Kind> = {
  RunStarted: 'start',
  ForkedFrom: 'start',
  StepStarted: 'step',
  StepCompleted: 'ok',
  StepFailed: 'fail',
  CompensationFailed: 'fail',
  ValueRecorded: 'value',
  Checkpoint: 'checkpoint',
  RollbackRequested: 'rollback',
  RolledBack: 'marker',
  CompensationStarted: 'comp',
  CompensationCompleted: 'comp',
  CompensationRetried: 'comp',
  ResolvedByHand: 'comp',
  Verified: 'comp',
  NeedsAttention: 'attention',
  RunCompleted: 'end',
  RunFailed: 'endfail',
  RunCancelled: 'endfail',
  // A run that waits for a person or another system is drawn like one that needs attention.
  WaitStarted: 'attention',
  SignalReceived: 'value',
  WaitTimedOut: 'fail',
  ChangeRecorded: 'value',
};

function kindOf(event: EventEnvelope): Kind {
  const e = asRunEvent(event);
  if (!e) return 'domain';
  // A verification that failed is drawn as a failure.
  return e.type === 'Verified' && !e.data.ok ? 'fail' : KINDS[e.type];
}

/**
 * Every event of the run with its mark and its line (the run model's
 * timeline), and how it is drawn. Nothing is hidden; undone events are only marked.
 */
export function rowsOf(events: readonly EventEnvelope[]): Row[] {
  const lines = timelineOf(events, (v) => short(v));
  return events.map((event, i) => {
    const { status, undoneBy, summary, durationMs } = lines[i] as (typeof lines)[number];
    return {
      event,
      kind: kindOf(event),
      status,
      summary,
      ...(undoneBy === undefined ? {} : { undoneBy }),
      ...(durationMs === undefined ? {} : { durationMs }),
    };
  });
}

/** "1 event", "17 events". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function short(value: unknown, max = 80): string {
  let text: string;
  try {
    text = value === undefined ? '' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function age(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s}s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h}h ago`;
  return `${Math.round(h / 24)}d ago`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m ${Math.round((ms % 60_000) / 1000)}s`;
}

export function clockTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export const STATUS_LABEL: Record<RunStatus, string> = {
  running: 'running',
  waiting: 'waiting',
  completed: 'completed',
  failed: 'failed',
  rolling_back: 'rolling back',
  rolled_back: 'rolled back',
  needs_attention: 'needs attention',
  cancelled: 'cancelled',
};
