import { canonicalJson } from '../events/canonical.js';
import type { EventEnvelope, Json, NewEvent } from '../events/envelope.js';
import { ConcurrencyError, RewindError, ValidationError } from '../events/errors.js';
import { uuidv7 } from '../events/ids.js';
import type { EventStore } from '../store/types.js';
import { RunConflictError, RunNotFoundError } from './errors.js';
import { type ForkedFromData, isRunEvent, RunEvents, type RunStartedData } from './events.js';
import { effectiveEvents, journalOf } from './journal.js';
import { type At, isVersion, resolveAt } from './model/point.js';
import { pendingRequest as pendingRollback } from './rollback/decide.js';
import { streamOf } from './run-log.js';
import type { Workflow } from './workflow.js';

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

function startedOf(events: readonly EventEnvelope[]): RunStartedData {
  const first = events[0];
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) throw new ValidationError('a run starts with RunStarted');
  return first.data;
}

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
  const started = startedOf(original);
  const from = started.runId;
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
  const forkedFrom: ForkedFromData = { runId: from, version };
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
  const started = startedOf(events);
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
  const version = options.at === undefined ? events.length : forkPointOf(runId, events, options.at);
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
function forkPointOf(runId: string, events: readonly EventEnvelope[], at: At): number {
  if (isVersion(at)) {
    const version = typeof at === 'number' ? at : at.version;
    if (!Number.isInteger(version) || version < 1 || version > events.length) {
      throw new ForkPointError(runId, version, `the run has ${events.length} events`, `fork at a version from 1 to ${events.length}`);
    }
    return version;
  }
  return resolveAt(runId, events, at);
}
