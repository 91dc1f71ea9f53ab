import type { EventEnvelope } from '../events/envelope.js';
import type { EventStore } from '../store/types.js';
import { RunNotFoundError } from './errors.js';
import { isRunEvent, RunEvents } from './events.js';
import { type At, checkVersion, isVersion, resolveAt } from './model/point.js';
import { diffRuns, type RunDiff } from './model/run-diff.js';
import { effectiveCheckpointIn, type Reducer, type StateAt, stateFromSlice } from './model/state-at.js';
import { streamOf } from './run-log.js';

// Time travel over stored runs: the reads behind runtime.stateAt() and
// runtime.diff(). What the events mean there is the run model's (model/:
// points, state at a point, run diffs); forks are fork.ts.

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
  if (!first || !isRunEvent(first, RunEvents.RunStarted)) throw new RunNotFoundError(runId);
  const workflow = workflowOf(first.data.workflow, first.data.workflowVersion);
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
  const checkpoint = found >= 0 ? slice[0] : undefined;
  return {
    runId,
    version,
    recordedAt: point.recordedAt,
    type: point.type,
    state: stateFromSlice<S>(workflow, slice),
    ...(checkpoint && isRunEvent(checkpoint, RunEvents.Checkpoint)
      ? { fromCheckpoint: { label: checkpoint.data.label, version: checkpoint.version } }
      : {}),
  };
}

/** One read per run; each side at its own point (`at`, or a pair of points), default its end. */
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
