import type { EventEnvelope, Json } from '../../events/envelope.js';
import { effectiveHistory } from '../../projections/effective-history.js';
import { asRunEvent, isRunEvent, RunEvents } from '../events.js';
import { effectiveEvents, foldState, isDomainEvent, statusAfter } from '../journal.js';
import type { Workflow } from '../workflow.js';

// The state of a run at a point: the fold of the effective history of the
// prefix 1..v, with the workflow's reducer when there is one, else what the
// run's journal says it had done (the browser has no reducer).

export type Reducer = Pick<Workflow, 'initialState' | 'apply'>;

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

/** The effective history of the prefix 1..version: the log as it stood then. */
export function effectiveAt<E extends EventEnvelope>(events: readonly E[], version: number): E[] {
  const end = events.findIndex((e) => e.version > version);
  return effectiveHistory(end < 0 ? events : events.slice(0, end));
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
 * checkpoint, or -1 when the page holds none; `minTarget` carries the lowest
 * target seen from one page to the next.
 */
export function effectiveCheckpointIn(backward: readonly EventEnvelope[], minTarget: { value: number }): number {
  for (const [i, e] of backward.entries()) {
    if (isRunEvent(e, RunEvents.RolledBack)) minTarget.value = Math.min(minTarget.value, e.data.targetVersion);
    else if (isRunEvent(e, RunEvents.Checkpoint) && e.version <= minTarget.value) return i;
  }
  return -1;
}

/**
 * What the run had done at `version`, from its events alone, for a reader
 * without the workflow's reducer: its status there, the result of each
 * completed step (and the failures not yet retried), the domain events it
 * emitted, the rollback in progress (a finished one took its own events out
 * of the effective history), its recorded values, the newest
 * checkpoint and its snapshot, and its input. What changes most comes first,
 * so that a change is in view.
 */
export function journalStateAt(events: readonly EventEnvelope[], version: number): Json {
  const effective = effectiveAt(events, version);
  const last = events.find((e) => e.version === version) ?? events[events.length - 1];
  const steps: Record<string, Json> = {};
  const failures: Record<string, Json> = {};
  const values: Json[] = [];
  const emitted: Json[] = [];
  let input: Json = null;
  let checkpoint: Json = null;
  let rollback: { to: string; reason: string; compensated: string[] } | undefined;
  for (const event of effective) {
    const e = asRunEvent(event);
    if (!e) {
      if (isDomainEvent(event)) emitted.push({ type: event.type, data: (event.data ?? null) as Json });
      continue;
    }
    switch (e.type) {
      case RunEvents.RunStarted:
        input = e.data.input;
        break;
      case RunEvents.StepCompleted:
        steps[e.data.name] = e.data.result ?? null;
        delete failures[e.data.name];
        break;
      case RunEvents.StepFailed:
        failures[e.data.name] = `${e.data.error?.message ?? 'failed'}${e.data.final ? '' : ` (attempt ${e.data.attempt}, will retry)`}`;
        break;
      case RunEvents.ValueRecorded:
        values.push({ [e.data.kind]: e.data.value });
        break;
      case RunEvents.Checkpoint:
        checkpoint = { label: e.data.label, version: e.version, state: e.data.state };
        break;
      case RunEvents.RollbackRequested:
        rollback = { to: e.data.label, reason: e.data.reason, compensated: [] };
        break;
      case RunEvents.CompensationCompleted:
        rollback?.compensated.push(e.data.step);
        break;
    }
  }
  const out: Record<string, Json> = { phase: last ? statusAfter(last) : 'running', steps, emitted };
  if (Object.keys(failures).length > 0) out.failures = failures;
  if (rollback) out.rollback = rollback;
  if (values.length > 0) out.values = values;
  if (checkpoint) out.checkpoint = checkpoint;
  out.input = input;
  return out;
}
