import { canonicalJson } from '../../events/canonical.js';
import type { EventEnvelope } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import { effectiveHistory } from '../../projections/effective-history.js';
import { isRunEvent, type RunEventOf, RunEvents, type RunStartedData } from '../events.js';
import { effectiveEvents, foldState } from '../journal.js';
import type { Reducer } from './state-at.js';
import { diffState, type StateDiff } from './state-diff.js';

// Two runs side by side: what they are to each other, their effective
// histories aligned by meaning, the first event where they differ, and the
// difference of their states.

/** What two runs are to each other, from their RunStarted events. */
export type Relation =
  | { kind: 'fork'; parent: string; child: string; version: number }
  | { kind: 'siblings'; parent: string; versions: [number, number] }
  | { kind: 'same-workflow'; workflow: string }
  | { kind: 'unrelated' };

export interface DivergentEvent {
  version: number;
  type: string;
  data: unknown;
}

export interface RunDiff<SA = unknown, SB = unknown> {
  a: { runId: string; workflow: string; version: number };
  b: { runId: string; workflow: string; version: number };
  relation: Relation;
  /** Leading effective events equal in type and data. */
  sharedEvents: number;
  sharesNothing: boolean;
  identical: boolean;
  /** The first effective event that differs; a side is absent when its history ended first. */
  firstDivergence?: { index: number; a?: DivergentEvent; b?: DivergentEvent };
  /** Absent when a workflow is not known to the runtime (nothing to fold with). */
  state?: { a: SA; b: SB; diff: StateDiff };
  summary: string;
}

/** Two runs' effective histories (each up to its own point), without the events that carry no meaning, side by side. */
export interface AlignedRuns<E extends EventEnvelope = EventEnvelope> {
  a: { started: RunStartedData; prefix: E[]; effective: E[] };
  b: { started: RunStartedData; prefix: E[]; effective: E[] };
  relation: Relation;
  /** Leading effective events equal in meaning. */
  shared: number;
  identical: boolean;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What an event means, without what only says where or when it was written:
 * ids, versions, positions, times and metadata are dropped, and so are the
 * run id inside step keys and the checkpoint index (versions differ between
 * runs whose rolled-back detours differ). Undefined for a ForkedFrom, which
 * only says where a fork's copy ends. `sameLineage`: a fork and its original
 * (or two forks of one run), whose starts differ only by their input.
 */
export function meaning(e: EventEnvelope, sameLineage: boolean): string | undefined {
  if (e.type === RunEvents.ForkedFrom) return undefined;
  let data: unknown = e.data;
  if (isRunEvent(e, RunEvents.RunStarted)) {
    // A fork under other code still shares the history it copied: only the input tells its start apart.
    data = sameLineage ? { input: e.data.input } : { workflow: e.data.workflow, input: e.data.input };
  } else if (isRecord(data)) {
    const { idempotencyKey: _k, stepKey: _s, ...rest } = data;
    data = e.type === RunEvents.Checkpoint ? { ...rest, index: undefined } : rest;
  }
  return `${e.type}\u0000${canonicalJson(data ?? null)}`;
}

export function relationOf(a: RunStartedData, b: RunStartedData): Relation {
  if (b.forkedFrom?.runId === a.runId) return { kind: 'fork', parent: a.runId, child: b.runId, version: b.forkedFrom.version };
  if (a.forkedFrom?.runId === b.runId) return { kind: 'fork', parent: b.runId, child: a.runId, version: a.forkedFrom.version };
  if (a.forkedFrom && a.forkedFrom.runId === b.forkedFrom?.runId) {
    return { kind: 'siblings', parent: a.forkedFrom.runId, versions: [a.forkedFrom.version, b.forkedFrom.version] };
  }
  if (a.workflow === b.workflow) return { kind: 'same-workflow', workflow: a.workflow };
  return { kind: 'unrelated' };
}

function startOf<E extends EventEnvelope>(events: readonly E[]): RunEventOf<'RunStarted'> {
  const first = events[0];
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) throw new ValidationError('a run history starts with RunStarted');
  return first;
}

/** Aligns the effective histories of two runs (each up to its own version, default its end). */
export function alignRuns<E extends EventEnvelope>(
  aEvents: readonly E[],
  bEvents: readonly E[],
  options: { aVersion?: number; bVersion?: number } = {},
): AlignedRuns<E> {
  const aStarted = startOf(aEvents).data;
  const bStarted = startOf(bEvents).data;
  const aPrefix = aEvents.slice(0, options.aVersion ?? aEvents.length);
  const bPrefix = bEvents.slice(0, options.bVersion ?? bEvents.length);
  const relation = relationOf(aStarted, bStarted);
  const lineage = relation.kind === 'fork' || relation.kind === 'siblings';
  const ea = effectiveHistory(aPrefix).filter((e) => meaning(e, lineage) !== undefined);
  const eb = effectiveHistory(bPrefix).filter((e) => meaning(e, lineage) !== undefined);
  let shared = 0;
  while (shared < ea.length && shared < eb.length && meaning(ea[shared] as E, lineage) === meaning(eb[shared] as E, lineage)) shared++;
  return {
    a: { started: aStarted, prefix: aPrefix, effective: ea },
    b: { started: bStarted, prefix: bPrefix, effective: eb },
    relation,
    shared,
    identical: shared === ea.length && shared === eb.length,
  };
}

/**
 * Compares the effective histories of two runs (each up to its own point),
 * and their states there. Any two runs may be compared; unrelated ones simply
 * share nothing.
 */
export function diffRuns(
  aEvents: readonly EventEnvelope[],
  bEvents: readonly EventEnvelope[],
  options: { aVersion?: number; bVersion?: number; workflowOf?: (name: string, version?: string) => Reducer | undefined } = {},
): RunDiff {
  const aligned = alignRuns(aEvents, bEvents, options);
  const { shared, identical, relation } = aligned;
  const pick = (e: EventEnvelope | undefined) => (e ? { version: e.version, type: e.type, data: e.data } : undefined);
  const da = pick(aligned.a.effective[shared]);
  const db = pick(aligned.b.effective[shared]);
  const wa = options.workflowOf?.(aligned.a.started.workflow, aligned.a.started.workflowVersion);
  const wb = options.workflowOf?.(aligned.b.started.workflow, aligned.b.started.workflowVersion);
  let state: RunDiff['state'];
  if (wa && wb) {
    const sa = foldState(wa, effectiveEvents(aligned.a.prefix));
    const sb = foldState(wb, effectiveEvents(aligned.b.prefix));
    state = { a: sa, b: sb, diff: diffState(sa, sb) };
  }
  const a = { runId: aligned.a.started.runId, workflow: aligned.a.started.workflow, version: aligned.a.prefix.length };
  const b = { runId: aligned.b.started.runId, workflow: aligned.b.started.workflow, version: aligned.b.prefix.length };
  const summary =
    shared === 0
      ? `runs "${a.runId}" and "${b.runId}" share nothing: ${
          a.workflow === b.workflow ? 'their inputs differ' : `different workflows ("${a.workflow}" and "${b.workflow}")`
        }`
      : identical
        ? `runs "${a.runId}" and "${b.runId}" have the same effective history (${shared} events)`
        : `runs "${a.runId}" and "${b.runId}" share ${shared} effective events, then ${describe(da)} (v${da?.version ?? '-'}) vs ${describe(db)} (v${db?.version ?? '-'})`;
  return {
    a,
    b,
    relation,
    sharedEvents: shared,
    sharesNothing: shared === 0,
    identical,
    ...(identical ? {} : { firstDivergence: { index: shared, ...(da ? { a: da } : {}), ...(db ? { b: db } : {}) } }),
    ...(state ? { state } : {}),
    summary,
  };
}

/** An event in a sentence: its type, and the step or checkpoint it names. */
function describe(e: DivergentEvent | undefined): string {
  if (!e) return 'the end';
  const d = isRecord(e.data) ? e.data : {};
  const what = typeof d.name === 'string' ? ` "${d.name}"` : typeof d.label === 'string' ? ` "${d.label}"` : '';
  return `${e.type}${what}`;
}
