import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, RewindError, ValidationError } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { EventStore } from '../store/types.js';
import { diffState, type StateDiff } from './diff.js';
import { CheckpointNotFoundError, RunConflictError, RunNotFoundError, type SerializedError } from './errors.js';
import {
  type CheckpointData,
  type ForkedFromData,
  type RollbackRequestedData,
  type RolledBackData,
  RunEvents,
  type RunStartedData,
} from './events.js';
import { effectiveEvents, foldState, journalOf } from './journal.js';
import { pendingRequest as pendingRollback } from './rollback/decide.js';
import { streamOf } from './run-log.js';
import type { Workflow } from './workflow.js';

// Time travel over a run's stream: its annotated history, its state at any
// past point, forks and diffs. The functions on events are pure; the async
// ones at the bottom only read (or, for a fork, write one atomic append).
//
// "At a point" always means the log as it stood then: the effective history
// of the prefix 1..v. A rollback recorded after v does not change the state
// at v, because RolledBack markers only point backwards.
//
// Forks COPY, they do not reference. The fork's stream holds the original's
// events 1..v, all of them (rolled-back detours and markers too), under new
// ids, re-chained by the store, with the original's recordedAt, followed by a
// ForkedFrom { runId, version } event; its RunStarted names the fork's id,
// workflow and input and carries the same forkedFrom. Why a full copy: the
// versions, checkpoint indexes and rollback targets inside the copied events
// stay true without rewriting, the code replays with the same ctx.rollbacks
// (a workflow that picks another path after a rollback would otherwise hit a
// non-determinism error), each stream's hash chain verifies on its own, and
// the original can be archived without breaking its forks.
//
// Side effects. Before the fork point nothing runs again: the copied steps'
// journaled results replay. After it, the fork runs its steps live under its
// own idempotency keys (they contain the fork's run id), so they are new
// effects, owned and compensated by the fork; the original's effects after
// the fork point stay where they are, owned by the original. The effects
// before the fork point are shared: if the fork later rolls back past its
// fork point it compensates them under the same compensation key as the
// original would (`<step key>:undo`), so an idempotent API undoes each at
// most once, but the original then holds an undone effect. Fork at a
// checkpoint and roll the fork back no further than that checkpoint.
// A fork point inside an unfinished rollback, or between a step's start and
// end, is refused (ForkPointError): the effect's fate there is not known.

/** A point in a run: a stream version, a time (the newest event recorded at or before it), or a checkpoint label. */
export type At = number | { version: number } | { time: string | number | Date } | { label: string };

type Reducer = Pick<Workflow, 'initialState' | 'apply'>;

/** The point asked for is not in the run. Nothing was written. */
export class TimeTravelError extends RewindError {
  readonly runId: string;
  constructor(runId: string, message: string, hint?: string) {
    super('TIME_TRAVEL', `run "${runId}": ${message}`, hint);
    this.runId = runId;
  }
}

/** A fork point that cannot be continued from. Nothing was written. */
export class ForkPointError extends RewindError {
  readonly runId: string;
  readonly version: number;
  constructor(runId: string, version: number, why: string, hint: string) {
    super('FORK_POINT', `cannot fork run "${runId}" at version ${version}: ${why}`, hint);
    this.runId = runId;
    this.version = version;
  }
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

export interface HistoryEvent {
  version: number;
  position: number;
  id: string;
  type: string;
  recordedAt: string;
  data: unknown;
  /**
   * 'effective': still counts. 'rolled_back': left the effective history when
   * the RolledBack marker at `undoneBy` was written. 'marker': a RolledBack
   * marker itself, which is never undone (the rollback did happen).
   */
  status: 'effective' | 'rolled_back' | 'marker';
  undoneBy?: number;
}

export interface CheckpointRecord {
  label: string;
  version: number;
  recordedAt: string;
  effective: boolean;
  undoneBy?: number;
}

export interface RollbackRecord {
  /** Version of the RolledBack marker. */
  version: number;
  requestVersion: number;
  targetVersion: number;
  label: string;
  reason: string;
  trigger: RollbackRequestedData['trigger'];
  after: RolledBackData['after'];
  recordedAt: string;
  /** How many events it took out of the effective history (versions targetVersion+1 .. version-1 still effective then). */
  undid: number;
  /** Set when a coordinator rolled this run back together with others. */
  coordinator?: string;
}

export interface ForkOrigin {
  runId: string;
  version: number;
}

export interface RunHistory {
  runId: string;
  workflow: string;
  version: number;
  forkedFrom?: ForkOrigin;
  events: HistoryEvent[];
  checkpoints: CheckpointRecord[];
  rollbacks: RollbackRecord[];
  /** A rollback requested and not finished yet (compensating, or blocked on one step). */
  pendingRollback?: { requestVersion: number; targetVersion: number; label: string; reason: string; coordinator?: string };
}

/**
 * Every event with its mark. The same stack walk as effectiveEvents(), except
 * that what a marker pops is labelled with the marker instead of forgotten.
 */
export function historyOf(events: readonly EventEnvelope[]): RunHistory {
  const first = events[0];
  if (first?.type !== RunEvents.RunStarted) throw new ValidationError('a run history starts with RunStarted');
  const started = first.data as RunStartedData;
  const undoneBy = new Map<number, number>();
  const undidCount = new Map<number, number>();
  const kept: EventEnvelope[] = [];
  for (const event of events) {
    if (event.type !== RunEvents.RolledBack) {
      kept.push(event);
      continue;
    }
    const target = (event.data as RolledBackData).targetVersion;
    let n = 0;
    while (kept.length > 0 && (kept[kept.length - 1] as EventEnvelope).version > target) {
      undoneBy.set((kept.pop() as EventEnvelope).version, event.version);
      n++;
    }
    undidCount.set(event.version, n);
  }
  const requests = new Map(
    events.filter((e) => e.type === RunEvents.RollbackRequested).map((e) => [e.version, e.data as RollbackRequestedData]),
  );
  const pending = pendingRollback(events);
  return {
    runId: started.runId,
    workflow: started.workflow,
    version: events.length,
    ...(started.forkedFrom ? { forkedFrom: started.forkedFrom } : {}),
    events: events.map((e) => {
      const by = undoneBy.get(e.version);
      return {
        version: e.version,
        position: e.position,
        id: e.id,
        type: e.type,
        recordedAt: e.recordedAt,
        data: e.data,
        status: e.type === RunEvents.RolledBack ? 'marker' : by === undefined ? 'effective' : 'rolled_back',
        ...(by === undefined ? {} : { undoneBy: by }),
      };
    }),
    checkpoints: events
      .filter((e) => e.type === RunEvents.Checkpoint)
      .map((e) => {
        const by = undoneBy.get(e.version);
        return {
          label: (e.data as CheckpointData).label,
          version: e.version,
          recordedAt: e.recordedAt,
          effective: by === undefined,
          ...(by === undefined ? {} : { undoneBy: by }),
        };
      }),
    rollbacks: events
      .filter((e) => e.type === RunEvents.RolledBack)
      .map((e) => {
        const d = e.data as RolledBackData;
        const coordinator = requests.get(d.requestVersion)?.coordinator;
        return {
          version: e.version,
          requestVersion: d.requestVersion,
          targetVersion: d.targetVersion,
          label: d.label,
          reason: d.reason,
          trigger: d.trigger,
          after: d.after,
          recordedAt: e.recordedAt,
          undid: undidCount.get(e.version) ?? 0,
          ...(coordinator ? { coordinator } : {}),
        };
      }),
    ...(pending
      ? {
          pendingRollback: {
            requestVersion: pending.version,
            targetVersion: pending.data.targetVersion,
            label: pending.data.label,
            reason: pending.data.reason,
            ...(pending.data.coordinator ? { coordinator: pending.data.coordinator } : {}),
          },
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------
// State at a point
// ---------------------------------------------------------------------------

function isVersion(at: At): at is number | { version: number } {
  return typeof at === 'number' || (typeof at === 'object' && at !== null && 'version' in at);
}

function checkVersion(runId: string, end: number, at: number | { version: number }): number {
  const version = typeof at === 'number' ? at : at.version;
  if (!Number.isInteger(version) || version < 1 || version > end) {
    throw new TimeTravelError(runId, `has no version ${version}`, `versions run from 1 to ${end}`);
  }
  return version;
}

/** Resolves a point against the whole stream (events[i].version === i + 1). */
export function resolveAt(runId: string, events: readonly EventEnvelope[], at: At): number {
  if (isVersion(at)) return checkVersion(runId, events.length, at);
  if (typeof at === 'object' && at !== null && 'time' in at) {
    const t = at.time instanceof Date ? at.time.getTime() : typeof at.time === 'number' ? at.time : Date.parse(at.time);
    if (!Number.isFinite(t))
      throw new ValidationError(`time ${JSON.stringify(at.time)} is not a date`, [], 'use an ISO-8601 time or epoch ms');
    let version = 0;
    // recordedAt is assigned at append and only grows within a stream (a fork keeps the original's times for its copy).
    for (const e of events) if (Date.parse(e.recordedAt) <= t) version = e.version;
    if (version === 0) {
      throw new TimeTravelError(
        runId,
        `had not started at ${new Date(t).toISOString()}`,
        `its first event was recorded at ${events[0]?.recordedAt}`,
      );
    }
    return version;
  }
  if (typeof at === 'object' && at !== null && 'label' in at && typeof at.label === 'string') {
    // The newest checkpoint with the label that still counts; failing that, the newest one a rollback took out.
    const effective = effectiveEvents(events);
    const isLabel = (e: EventEnvelope) => e.type === RunEvents.Checkpoint && (e.data as CheckpointData).label === at.label;
    const hit = [...effective].reverse().find(isLabel) ?? [...events].reverse().find(isLabel);
    if (!hit) {
      const labels = [...new Set(events.filter((e) => e.type === RunEvents.Checkpoint).map((e) => (e.data as CheckpointData).label))];
      throw new CheckpointNotFoundError(runId, at.label, labels);
    }
    return hit.version;
  }
  throw new ValidationError('a point in a run is a version, { version }, { time } or { label }');
}

/**
 * The state after the events 1..version, from a slice of them that starts at
 * or before the newest checkpoint still effective at `version` (or at 1).
 * foldState() starts from that checkpoint's snapshot.
 */
export function stateFromSlice<S>(workflow: Reducer, slice: readonly EventEnvelope[]): S {
  return foldState(workflow, effectiveEvents(slice)) as S;
}

/**
 * Where the slice for stateFromSlice must start, reading backwards from the
 * point: a checkpoint at c is effective at v exactly when no marker in (c, v]
 * targets a version below c. Returns the index in `backward` of that
 * checkpoint, or -1 when the page holds none.
 */
function effectiveCheckpointIn(backward: readonly EventEnvelope[], minTarget: { value: number }): number {
  for (const [i, e] of backward.entries()) {
    if (e.type === RunEvents.RolledBack) minTarget.value = Math.min(minTarget.value, (e.data as RolledBackData).targetVersion);
    else if (e.type === RunEvents.Checkpoint && e.version <= minTarget.value) return i;
  }
  return -1;
}

export interface StateAt<S = unknown> {
  runId: string;
  version: number;
  recordedAt: string;
  /** The event the point resolved to. */
  type: string;
  state: S;
  /** The checkpoint whose snapshot the state was built from, if any. */
  fromCheckpoint?: { label: string; version: number };
}

/**
 * Reads only from the point back to the newest checkpoint effective there,
 * so the cost follows the distance to that checkpoint, not the run's length.
 */
export async function readStateAt<S>(
  store: EventStore,
  runId: string,
  workflowOf: (name: string, version?: string) => Reducer,
  at: At,
): Promise<StateAt<S>> {
  const stream = streamOf(runId);
  const head = await store.streamVersion(stream);
  if (head === 0) throw new RunNotFoundError(runId);
  // A version needs no reading to resolve; a time or a label is looked up in the whole stream.
  const version = isVersion(at) ? checkVersion(runId, head, at) : resolveAt(runId, await store.read(stream), at);
  const [first] = await store.read(stream, { from: 1, to: 1 });
  const started = (first as EventEnvelope<string, RunStartedData>).data;
  const workflow = workflowOf(started.workflow, started.workflowVersion);
  const backward: EventEnvelope[] = [];
  const minTarget = { value: Number.POSITIVE_INFINITY };
  let found = -1;
  // Pages grow from small: a checkpoint is usually near, and a run may be long.
  for (let from = version, limit = 32; from >= 1 && found < 0; from -= limit, limit = Math.min(limit * 2, 4096)) {
    const page = await store.read(stream, { direction: 'backward', from, limit });
    const hit = effectiveCheckpointIn(page, minTarget);
    if (hit >= 0) found = backward.length + hit;
    backward.push(...(hit >= 0 ? page.slice(0, hit + 1) : page));
  }
  const slice = backward.reverse();
  const point = slice[slice.length - 1] as EventEnvelope;
  const checkpoint = found >= 0 ? (slice[0] as EventEnvelope) : undefined;
  return {
    runId,
    version,
    recordedAt: point.recordedAt,
    type: point.type,
    state: stateFromSlice<S>(workflow, slice),
    ...(checkpoint ? { fromCheckpoint: { label: (checkpoint.data as CheckpointData).label, version: checkpoint.version } } : {}),
  };
}

// ---------------------------------------------------------------------------
// Fork
// ---------------------------------------------------------------------------

export interface ForkPlan {
  runId: string;
  events: NewEvent[];
}

export interface ForkSpec {
  /** Version of the original the fork continues from. */
  version: number;
  runId: string;
  workflow: string;
  /** The version of the code the fork goes on under; the original's when undefined. */
  workflowVersion?: string;
  /** The fork's input; the original's when undefined. */
  input?: Json;
}

const TERMINAL = new Set<string>([RunEvents.RunCompleted, RunEvents.RunFailed, RunEvents.RunCancelled]);

/**
 * The events of a fork: a copy of the original's events 1..version, all of
 * them (rolled-back ones and markers included), so every version, checkpoint
 * index and rollback target means the same in both streams and the code
 * sees the same ctx.rollbacks on replay. New ids, the original's times, and
 * the store re-chains the hashes: each stream's chain stands alone. Then a
 * ForkedFrom event. A terminal event at the fork point is left out so the
 * fork can continue.
 */
export function planFork(original: readonly EventEnvelope[], spec: ForkSpec): ForkPlan {
  const first = original[0];
  if (first?.type !== RunEvents.RunStarted) throw new ValidationError('a run starts with RunStarted');
  const from = (first.data as RunStartedData).runId;
  const { version } = spec;
  if (!Number.isInteger(version) || version < 1 || version > original.length) {
    throw new ForkPointError(from, version, `the run has ${original.length} events`, `fork at a version from 1 to ${original.length}`);
  }
  const prefix = original.slice(0, version);
  const pending = pendingRollback(prefix);
  if (pending) {
    // Continuing it in the fork would compensate effects the original owns.
    throw new ForkPointError(
      from,
      version,
      `a rollback requested at version ${pending.version} is not finished there`,
      `fork before version ${pending.version} or after its RolledBack marker`,
    );
  }
  const open = journalOf(effectiveEvents(prefix)).find((e) => e?.kind === 'step' && e.open);
  if (open?.kind === 'step') {
    // Its effect may or may not have happened; the fork would run it again under the original's key.
    throw new ForkPointError(
      from,
      version,
      `step "${open.name}" has started and not ended there`,
      'fork before the step starts or after it ends',
    );
  }
  const started = first.data as RunStartedData;
  const forkedFrom: ForkOrigin = { runId: from, version };
  const copied = TERMINAL.has(prefix[prefix.length - 1]?.type ?? '') ? prefix.slice(0, -1) : prefix;
  const events: NewEvent[] = copied.map((e, i) => ({
    type: e.type,
    schemaVersion: e.schemaVersion,
    data:
      i === 0
        ? ({
            runId: spec.runId,
            workflow: spec.workflow,
            workflowVersion: spec.workflowVersion ?? started.workflowVersion,
            input: spec.input === undefined ? started.input : spec.input,
            forkedFrom,
          } satisfies RunStartedData)
        : e.data,
    metadata: { ...e.metadata, copiedFrom: e.id },
    recordedAt: e.recordedAt,
  }));
  events.push({ type: RunEvents.ForkedFrom, data: forkedFrom satisfies ForkedFromData });
  return { runId: spec.runId, events };
}

// ---------------------------------------------------------------------------
// Diff
// ---------------------------------------------------------------------------

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

/**
 * What an event means, without what only says where or when it was written:
 * ids, versions, positions, times and metadata are dropped, and so are the
 * run id inside step keys and the checkpoint index (versions differ between
 * runs whose rolled-back detours differ).
 */
function meaning(e: EventEnvelope, sameLineage: boolean): string | undefined {
  if (e.type === RunEvents.ForkedFrom) return undefined;
  let data = e.data as Record<string, unknown> | null;
  if (e.type === RunEvents.RunStarted) {
    const d = e.data as RunStartedData;
    // A fork under other code still shares the history it copied: only the input tells its start apart.
    data = sameLineage ? { input: d.input } : { workflow: d.workflow, input: d.input };
  } else if (data && typeof data === 'object' && !Array.isArray(data)) {
    const { idempotencyKey: _k, stepKey: _s, ...rest } = data;
    data = e.type === RunEvents.Checkpoint ? { ...rest, index: undefined } : rest;
  }
  return `${e.type}\u0000${canonicalJson(data ?? null)}`;
}

function relationOf(a: RunStartedData, b: RunStartedData): Relation {
  if (b.forkedFrom?.runId === a.runId) return { kind: 'fork', parent: a.runId, child: b.runId, version: b.forkedFrom.version };
  if (a.forkedFrom?.runId === b.runId) return { kind: 'fork', parent: b.runId, child: a.runId, version: a.forkedFrom.version };
  if (a.forkedFrom && a.forkedFrom.runId === b.forkedFrom?.runId) {
    return { kind: 'siblings', parent: a.forkedFrom.runId, versions: [a.forkedFrom.version, b.forkedFrom.version] };
  }
  if (a.workflow === b.workflow) return { kind: 'same-workflow', workflow: a.workflow };
  return { kind: 'unrelated' };
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
  const aStart = aEvents[0]?.data as RunStartedData;
  const bStart = bEvents[0]?.data as RunStartedData;
  const aPrefix = aEvents.slice(0, options.aVersion ?? aEvents.length);
  const bPrefix = bEvents.slice(0, options.bVersion ?? bEvents.length);
  const relation = relationOf(aStart, bStart);
  const lineage = relation.kind === 'fork' || relation.kind === 'siblings';
  const ea = effectiveEvents(aPrefix).filter((e) => meaning(e, lineage) !== undefined);
  const eb = effectiveEvents(bPrefix).filter((e) => meaning(e, lineage) !== undefined);
  let shared = 0;
  while (
    shared < ea.length &&
    shared < eb.length &&
    meaning(ea[shared] as EventEnvelope, lineage) === meaning(eb[shared] as EventEnvelope, lineage)
  )
    shared++;
  const identical = shared === ea.length && shared === eb.length;
  const pick = (e: EventEnvelope | undefined) => (e ? { version: e.version, type: e.type, data: e.data } : undefined);
  const da = pick(ea[shared]);
  const db = pick(eb[shared]);
  const wa = options.workflowOf?.(aStart.workflow, aStart.workflowVersion);
  const wb = options.workflowOf?.(bStart.workflow, bStart.workflowVersion);
  let state: RunDiff['state'];
  if (wa && wb) {
    const sa = foldState(wa, effectiveEvents(aPrefix));
    const sb = foldState(wb, effectiveEvents(bPrefix));
    state = { a: sa, b: sb, diff: diffState(sa, sb) };
  }
  const a = { runId: aStart.runId, workflow: aStart.workflow, version: aPrefix.length };
  const b = { runId: bStart.runId, workflow: bStart.workflow, version: bPrefix.length };
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

function describe(e: DivergentEvent | undefined): string {
  if (!e) return 'the end';
  const d = e.data as { name?: unknown; label?: unknown; error?: SerializedError } | null;
  const what = typeof d?.name === 'string' ? ` "${d.name}"` : typeof d?.label === 'string' ? ` "${d.label}"` : '';
  return `${e.type}${what}`;
}

// ---------------------------------------------------------------------------
// The store side: one read per run, one atomic append per fork
// ---------------------------------------------------------------------------

const RUN_ID = /^[A-Za-z0-9_.:@-]{1,200}$/;

export interface ForkOptions {
  /** Where the fork branches off: default the original's last event. */
  at?: At;
  /** The fork's id; generated when absent. */
  runId?: string;
  /** Other input for the fork (checked against the workflow's input schema); default the original's. */
  input?: unknown;
  /** Other code: a workflow (registered on the way) or a registered name; default the original's. */
  workflow?: Workflow | string;
  /** Return once the fork is written; `wait(runId)` settles when it stops. */
  detach?: boolean;
}

/**
 * Writes a fork in one append that expects no stream, so it is all there or
 * not at all, and a taken id writes nothing. Returns the fork's run id.
 */
export async function writeFork(
  store: EventStore,
  runId: string,
  options: ForkOptions,
  workflowOf: (name: string, version?: string) => Workflow,
): Promise<string> {
  const events = await store.read(streamOf(runId));
  if (events.length === 0) throw new RunNotFoundError(runId);
  const started = events[0]?.data as RunStartedData;
  const workflow =
    options.workflow === undefined
      ? workflowOf(started.workflow, started.workflowVersion)
      : typeof options.workflow === 'string'
        ? workflowOf(options.workflow)
        : options.workflow;
  let input: Json | undefined;
  if (options.input !== undefined) {
    let value: unknown = options.input;
    if (workflow.input) {
      const parsed = workflow.input.safeParse(value);
      if (!parsed.success) {
        throw new ValidationError(
          `input of the fork of "${runId}" is invalid for workflow "${workflow.name}"`,
          parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
        );
      }
      value = parsed.data;
    }
    try {
      canonicalJson(value);
    } catch (error) {
      throw new ValidationError(`input of the fork of "${runId}" is not JSON`, [(error as Error).message]);
    }
    input = value as Json;
  }
  const readable = `${runId}.fork-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const forkId = options.runId ?? (RUN_ID.test(readable) ? readable : uuidv7());
  if (typeof forkId !== 'string' || !RUN_ID.test(forkId)) {
    throw new ValidationError(`invalid run id ${JSON.stringify(forkId)}`, [], 'use 1-200 letters, digits and _ . : @ -');
  }
  const version = options.at === undefined ? events.length : resolveAtForFork(runId, events, options.at);
  const plan = planFork(events, {
    version,
    runId: forkId,
    workflow: workflow.name,
    workflowVersion: workflow.version,
    ...(input === undefined ? {} : { input }),
  });
  try {
    await store.append(streamOf(forkId), plan.events, { expectedVersion: 'no_stream' });
  } catch (error) {
    if (error instanceof ConcurrencyError) throw new RunConflictError(forkId, 'already; a fork needs a new run id');
    throw error;
  }
  return forkId;
}

/** Past the end is a fork error (the point the caller asked for), not a generic time-travel one. */
function resolveAtForFork(runId: string, events: readonly EventEnvelope[], at: At): number {
  if (isVersion(at)) {
    const version = typeof at === 'number' ? at : at.version;
    if (!Number.isInteger(version) || version < 1 || version > events.length) {
      throw new ForkPointError(runId, version, `the run has ${events.length} events`, `fork at a version from 1 to ${events.length}`);
    }
    return version;
  }
  return resolveAt(runId, events, at);
}

export async function diffStoredRuns(
  store: EventStore,
  a: string,
  b: string,
  options: { at?: At | [At, At] },
  workflowOf: (name: string, version?: string) => Reducer | undefined,
): Promise<RunDiff> {
  const [ea, eb] = await Promise.all([store.read(streamOf(a)), store.read(streamOf(b))]);
  if (ea.length === 0) throw new RunNotFoundError(a);
  if (eb.length === 0) throw new RunNotFoundError(b);
  const [atA, atB] = Array.isArray(options.at) ? options.at : [options.at, options.at];
  return diffRuns(ea, eb, {
    ...(atA === undefined ? {} : { aVersion: resolveAt(a, ea, atA) }),
    ...(atB === undefined ? {} : { bVersion: resolveAt(b, eb, atB) }),
    workflowOf,
  });
}
