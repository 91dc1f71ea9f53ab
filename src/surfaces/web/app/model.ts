// Pure functions over a run's events: what the timeline shows, the state at a
// point, structural diffs. No DOM and no fetch, so they are easy to test.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The log's envelope, as GET /runs/{id}/events returns it. */
export interface Envelope {
  id: string;
  streamId: string;
  version: number;
  position: number;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: Record<string, unknown>;
  recordedAt: string;
  hash: string;
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'rolling_back' | 'rolled_back' | 'needs_attention' | 'cancelled';
export const STATUSES: RunStatus[] = ['running', 'completed', 'failed', 'rolling_back', 'rolled_back', 'needs_attention', 'cancelled'];

export interface RunSummary {
  runId: string;
  workflow: string;
  /** The version of the workflow the run started under, and goes on under until it ends. */
  workflowVersion: string;
  status: RunStatus;
  version: number;
  startedAt: string;
  updatedAt: string;
}

export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
}

export interface RunInfo extends RunSummary {
  state?: unknown;
  input?: unknown;
  output?: unknown;
  error?: ErrorInfo;
  rollbacks: Array<{ version: number; targetVersion: number; label: string; reason: string; trigger: { kind: string; step?: string } }>;
  attention?: { step: string; stepKey: string; stage: string; error: ErrorInfo };
}

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
  event: Envelope;
  kind: Kind;
  /** 'rolled_back': a later RolledBack marker took it out of the effective history; it stays in the log. */
  status: 'effective' | 'rolled_back' | 'marker';
  /** The version of the marker that undid it. */
  undoneBy?: number;
  summary: string;
  /** For a step's end: milliseconds since its start. */
  durationMs?: number;
}

const RUN_EVENTS = new Set([
  'RunStarted',
  'StepStarted',
  'StepCompleted',
  'StepFailed',
  'ValueRecorded',
  'Checkpoint',
  'RollbackRequested',
  'CompensationStarted',
  'CompensationCompleted',
  'CompensationFailed',
  'Verified',
  'NeedsAttention',
  'CompensationRetried',
  'ResolvedByHand',
  'RolledBack',
  'RunCompleted',
  'RunFailed',
  'RunCancelled',
  'ForkedFrom',
]);

export function isDomainEvent(type: string): boolean {
  return !RUN_EVENTS.has(type);
}

function kindOf(e: Envelope): Kind {
  const d = (e.data ?? {}) as Record<string, any>;
  switch (e.type) {
    case 'RunStarted':
    case 'ForkedFrom':
      return 'start';
    case 'StepStarted':
      return 'step';
    case 'StepCompleted':
      return 'ok';
    case 'StepFailed':
    case 'CompensationFailed':
      return 'fail';
    case 'ValueRecorded':
      return 'value';
    case 'Checkpoint':
      return 'checkpoint';
    case 'RollbackRequested':
      return 'rollback';
    case 'RolledBack':
      return 'marker';
    case 'CompensationStarted':
    case 'CompensationCompleted':
    case 'CompensationRetried':
    case 'ResolvedByHand':
      return 'comp';
    case 'Verified':
      return d.ok ? 'comp' : 'fail';
    case 'NeedsAttention':
      return 'attention';
    case 'RunCompleted':
      return 'end';
    case 'RunFailed':
    case 'RunCancelled':
      return 'endfail';
    default:
      return 'domain';
  }
}

/** "1 event", "17 events". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function short(value: unknown, max = 80): string {
  let text: string;
  try {
    text = value === undefined ? '' : typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function summarise(e: Envelope): string {
  const d = (e.data ?? {}) as Record<string, any>;
  switch (e.type) {
    case 'RunStarted':
      return `${d.workflow}@${d.workflowVersion} ${short(d.input)}${d.forkedFrom ? ` · fork of ${d.forkedFrom.runId} at v${d.forkedFrom.version}` : ''}`;
    case 'ForkedFrom':
      return `copied from ${d.runId ?? ''} v${d.version ?? ''}`;
    case 'StepStarted':
      return `${d.name}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}`;
    case 'StepCompleted':
      return `${d.name} → ${d.result === undefined ? 'done' : short(d.result)}`;
    case 'StepFailed':
      return `${d.name}: ${d.error?.message ?? 'failed'}${d.final ? '' : ' (will retry)'}`;
    case 'ValueRecorded':
      return `${d.kind} = ${d.value}`;
    case 'Checkpoint':
      return `"${d.label}"`;
    case 'RollbackRequested':
      return `to "${d.label}" (v${d.targetVersion}): ${d.reason}`;
    case 'RolledBack':
      return `to "${d.label}" (v${d.targetVersion}): ${d.reason}`;
    case 'CompensationStarted':
      return `undo ${d.step}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}`;
    case 'CompensationCompleted':
      return `${d.step} undone`;
    case 'CompensationFailed':
      return `undo ${d.step}: ${d.error?.message ?? 'failed'}`;
    case 'Verified':
      return `${d.step}: ${d.ok ? 'ok' : `NOT ok${d.error ? `: ${d.error.message}` : ''}`}`;
    case 'NeedsAttention':
      return `${d.stage} of ${d.step} keeps failing: ${d.error?.message ?? ''}`;
    case 'CompensationRetried':
    case 'ResolvedByHand':
      return `${d.stepKey}${d.note ? `: ${d.note}` : ''}`;
    case 'RunCompleted':
      return d.output === undefined ? 'done' : short(d.output);
    case 'RunFailed':
      return String(d.error?.message ?? '');
    case 'RunCancelled':
      return String(d.reason ?? '');
    default:
      return short(e.data);
  }
}

/**
 * Every event with its mark, the way the runtime decides it (history.ts): a
 * RolledBack marker pops, from the events kept so far, those above its
 * target version. Nothing is hidden; undone events are only marked.
 */
export function rowsOf(events: readonly Envelope[]): Row[] {
  const undoneBy = new Map<number, number>();
  const kept: Envelope[] = [];
  for (const e of events) {
    if (e.type !== 'RolledBack') {
      kept.push(e);
      continue;
    }
    const target = Number((e.data as { targetVersion?: number }).targetVersion ?? 0);
    while (kept.length > 0 && (kept[kept.length - 1] as Envelope).version > target) {
      undoneBy.set((kept.pop() as Envelope).version, e.version);
    }
  }
  const started = new Map<string, number>();
  return events.map((e) => {
    const d = (e.data ?? {}) as Record<string, any>;
    const by = undoneBy.get(e.version);
    const row: Row = {
      event: e,
      kind: kindOf(e),
      status: e.type === 'RolledBack' ? 'marker' : by === undefined ? 'effective' : 'rolled_back',
      summary: summarise(e),
    };
    if (by !== undefined) row.undoneBy = by;
    const key = String(d.idempotencyKey ?? '');
    if (e.type === 'StepStarted') started.set(key, Date.parse(e.recordedAt));
    if ((e.type === 'StepCompleted' || e.type === 'StepFailed') && started.has(key)) {
      row.durationMs = Date.parse(e.recordedAt) - (started.get(key) as number);
    }
    return row;
  });
}

/** The effective history of the prefix 1..version: the log as it stood then. */
export function effectiveAt(events: readonly Envelope[], version: number): Envelope[] {
  const kept: Envelope[] = [];
  for (const e of events) {
    if (e.version > version) break;
    if (e.type !== 'RolledBack') {
      kept.push(e);
      continue;
    }
    const target = Number((e.data as { targetVersion?: number }).targetVersion ?? 0);
    while (kept.length > 0 && (kept[kept.length - 1] as Envelope).version > target) kept.pop();
  }
  return kept;
}

/**
 * What the run had done at `version`, computed here from its events when the
 * server cannot fold the workflow's own state: its input, the result of each
 * completed step, its recorded values, the newest checkpoint and its
 * snapshot, the domain events it emitted, and where it stood.
 */
export function journalStateAt(events: readonly Envelope[], version: number): Json {
  const effective = effectiveAt(events, version);
  const steps: Record<string, Json> = {};
  const failures: Record<string, Json> = {};
  const values: Json[] = [];
  const emitted: Json[] = [];
  let input: Json = null;
  let checkpoint: Json = null;
  let phase = 'running';
  let rollback: Json = null;
  for (const e of effective) {
    const d = (e.data ?? {}) as Record<string, any>;
    switch (e.type) {
      case 'RunStarted':
        input = (d.input ?? null) as Json;
        break;
      case 'StepCompleted':
        steps[d.name] = (d.result ?? null) as Json;
        delete failures[d.name];
        break;
      case 'StepFailed':
        failures[d.name] = `${d.error?.message ?? 'failed'}${d.final ? '' : ` (attempt ${d.attempt}, will retry)`}`;
        break;
      case 'ValueRecorded':
        values.push({ [d.kind]: d.value } as Json);
        break;
      case 'Checkpoint':
        checkpoint = { label: d.label, version: e.version, state: (d.state ?? null) as Json };
        break;
      case 'RollbackRequested':
        phase = 'rolling_back';
        rollback = { to: d.label, reason: d.reason, compensated: [] };
        break;
      case 'CompensationCompleted':
        if (rollback && typeof rollback === 'object' && !Array.isArray(rollback)) (rollback.compensated as Json[]).push(d.step);
        break;
      case 'NeedsAttention':
        phase = 'needs_attention';
        break;
      case 'RolledBack':
        phase = d.after === 'stop' ? 'rolled_back' : 'running';
        rollback = null;
        break;
      case 'RunCompleted':
        phase = 'completed';
        break;
      case 'RunFailed':
        phase = 'failed';
        break;
      case 'RunCancelled':
        phase = 'cancelled';
        break;
      default:
        if (isDomainEvent(e.type)) emitted.push({ type: e.type, data: (e.data ?? null) as Json });
    }
  }
  // What changes most comes first, so that a change is in view.
  const out: Record<string, Json> = { phase, steps, emitted };
  if (Object.keys(failures).length > 0) out.failures = failures;
  if (rollback) out.rollback = rollback;
  if (values.length > 0) out.values = values;
  if (checkpoint) out.checkpoint = checkpoint;
  out.input = input;
  return out;
}

// ---------------------------------------------------------------------------
// Structural diff of JSON values
// ---------------------------------------------------------------------------

export type Path = Array<string | number>;

export interface Change {
  path: Path;
  at: string;
  op: 'added' | 'removed' | 'changed';
  from?: unknown;
  to?: unknown;
}

export function formatPath(path: Path): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `${i ? '.' : ''}${p}` : `[${JSON.stringify(p)}]`))
    .join('');
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Key-order-insensitive equality of JSON values. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => sameJson(a[k], b[k]));
  }
  return false;
}

/** Objects key by key, arrays index by index (as the runtime's diffState does). */
export function diffJson(from: unknown, to: unknown): Change[] {
  const out: Change[] = [];
  const walk = (a: unknown, b: unknown, path: Path): void => {
    if (sameJson(a, b)) return;
    if (isObject(a) && isObject(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
      for (const k of keys) {
        // Own keys only: an inherited valueOf or toString is not in the state.
        const inA = Object.hasOwn(a, k) && a[k] !== undefined;
        const inB = Object.hasOwn(b, k) && b[k] !== undefined;
        if (inA && inB) walk(a[k], b[k], [...path, k]);
        else if (inA) out.push({ path: [...path, k], at: formatPath([...path, k]), op: 'removed', from: a[k] });
        else if (inB) out.push({ path: [...path, k], at: formatPath([...path, k]), op: 'added', to: b[k] });
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) walk(a[i], b[i], [...path, i]);
      for (let i = n; i < a.length; i++) out.push({ path: [...path, i], at: formatPath([...path, i]), op: 'removed', from: a[i] });
      for (let i = n; i < b.length; i++) out.push({ path: [...path, i], at: formatPath([...path, i]), op: 'added', to: b[i] });
      return;
    }
    out.push({ path, at: formatPath(path), op: 'changed', from: a, to: b });
  };
  walk(from, to, []);
  return out;
}

// ---------------------------------------------------------------------------
// Two runs
// ---------------------------------------------------------------------------

/** What an event means, without where or when it was written (ids, versions, times, keys that embed the run id). */
export function meaning(e: Envelope): string | undefined {
  if (e.type === 'ForkedFrom') return undefined;
  let data: unknown = e.data;
  if (e.type === 'RunStarted') data = { input: (e.data as Record<string, unknown>)?.input ?? null };
  else if (isObject(data)) {
    const { idempotencyKey: _k, stepKey: _s, index: _i, ...rest } = data;
    data = rest;
  }
  return `${e.type}\u0000${canonical(data)}`;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

export interface RunComparison {
  /** Leading effective events equal in meaning. */
  shared: number;
  identical: boolean;
  a: Envelope[];
  b: Envelope[];
  /** Index (in the effective histories) of the first event that differs. */
  divergence?: number;
}

export function compareRuns(aEvents: readonly Envelope[], bEvents: readonly Envelope[]): RunComparison {
  const a = effectiveAt(aEvents, Number.POSITIVE_INFINITY).filter((e) => meaning(e) !== undefined);
  const b = effectiveAt(bEvents, Number.POSITIVE_INFINITY).filter((e) => meaning(e) !== undefined);
  let shared = 0;
  while (shared < a.length && shared < b.length && meaning(a[shared] as Envelope) === meaning(b[shared] as Envelope)) shared++;
  const identical = shared === a.length && shared === b.length;
  return { shared, identical, a, b, ...(identical ? {} : { divergence: shared }) };
}

// ---------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------

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

export const STATUS_LABEL: Record<string, string> = {
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  rolling_back: 'rolling back',
  rolled_back: 'rolled back',
  needs_attention: 'needs attention',
  cancelled: 'cancelled',
};
