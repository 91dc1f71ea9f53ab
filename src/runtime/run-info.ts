import type { EventEnvelope } from '../events/envelope.js';
import type { EventStore } from '../store/types.js';
import { RunNotFoundError } from './errors.js';
import { asRunEvent, isRunEvent, type PointOfNoReturn, type RunEventOf, RunEvents } from './events.js';
import { effectiveEvents, foldState, lastAttention, rollbacksOf, statusAfter, waitingForAfter } from './journal.js';
import type { RunFilter, RunInfo, RunSummary } from './model/run.js';
import { RunLog, streamOf } from './run-log.js';
import type { RollbackInfo, Workflow } from './workflow.js';

// Reading runs: one run's info from as few events as its newest checkpoint
// allows, and summaries of many runs from two events each. What they return
// is declared with the run model (model/run.ts).

export type { RunFilter, RunInfo, RunSummary } from './model/run.js';

/** The largest page listPage() answers (and the most streams it reads from the store's list at once). */
export const MAX_RUNS_PAGE = 1000;

/** The reducer to read a run's state with, by the workflow's name and the version the run started under. */
type Lookup = (name: string, version: string) => Workflow | undefined;

/**
 * Reads the run from its newest Checkpoint (or the target of its newest
 * RolledBack marker) to the end, plus RunStarted: the checkpoint carries the
 * state and the rollbacks before it, so the cost follows the distance to that
 * checkpoint, not the run's length. A run with no checkpoint is read whole.
 */
export async function readRunInfo(store: EventStore, runId: string, workflows: Lookup): Promise<RunInfo> {
  const log = await RunLog.readBack(store, runId, (event) => {
    const e = asRunEvent(event);
    if (e?.type === RunEvents.Checkpoint) return e.version;
    if (e?.type === RunEvents.RolledBack) return e.data.targetVersion;
    return undefined;
  });
  const info = infoOf(log.started, log.events, workflows);
  if (info) return info;
  // A checkpoint written before checkpoints carried the rollbacks: only the whole stream has them.
  await log.loadAll();
  return infoOf(log.started, log.events, workflows) as RunInfo;
}

/**
 * The info from RunStarted and the events from an effective checkpoint (or
 * version 1) to the end: the checkpoint's snapshot and its list of earlier
 * rollbacks stand for everything before it. Undefined when the window starts
 * at a checkpoint that predates that list.
 */
export function infoOf(started: RunEventOf<'RunStarted'>, window: readonly EventEnvelope[], workflows: Lookup): RunInfo | undefined {
  const start = window[0] ?? started;
  let earlier: RollbackInfo[] = [];
  if (start.version > 1) {
    const carried = isRunEvent(start, RunEvents.Checkpoint) ? start.data.rollbacks : undefined;
    if (!Array.isArray(carried)) return undefined;
    earlier = carried;
  }
  const last = window[window.length - 1] ?? started;
  const { runId, workflow: name, workflowVersion, input } = started.data;
  const workflow = workflows(name, workflowVersion);
  const end = asRunEvent(last);
  const attention = lastAttention(window);
  const waiting = statusAfter(last) === 'waiting' ? waitOf(window) : undefined;
  const noReturn = pointOfNoReturnOf(start, effectiveEvents(window));
  return {
    runId,
    workflow: name,
    workflowVersion,
    status: statusAfter(last),
    version: last.version,
    state: workflow ? foldState(workflow, effectiveEvents(window)) : undefined,
    input,
    ...(end?.type === RunEvents.RunCompleted ? { output: end.data.output } : {}),
    ...(end?.type === RunEvents.RunFailed ? { error: end.data.error } : {}),
    rollbacks: [...earlier, ...rollbacksOf(window)],
    ...(attention ? { attention } : {}),
    ...(waiting ? { waiting } : {}),
    ...(noReturn ? { pointOfNoReturn: noReturn } : {}),
    startedAt: started.recordedAt,
    updatedAt: last.recordedAt,
  };
}

/** The wait a parked run's last events stand at. */
function waitOf(window: readonly EventEnvelope[]): RunInfo['waiting'] {
  const last = window[window.length - 1];
  const seq = last && (isRunEvent(last, RunEvents.WaitStarted) || isRunEvent(last, RunEvents.SignalReceived)) ? last.data.seq : undefined;
  for (let i = window.length - 1; i >= 0; i--) {
    const e = window[i] as EventEnvelope;
    if (isRunEvent(e, RunEvents.WaitStarted) && e.data.seq === seq) {
      const { name, timeoutAt, approval } = e.data;
      return { name, ...(timeoutAt === undefined ? {} : { timeoutAt }), ...(approval ? { approval } : {}) };
    }
  }
  return undefined;
}

/** The newest effective irreversible step: in the window, or carried by the checkpoint the window starts at. */
function pointOfNoReturnOf(start: EventEnvelope, effective: readonly EventEnvelope[]): PointOfNoReturn | undefined {
  for (let i = effective.length - 1; i >= 0; i--) {
    const e = effective[i] as EventEnvelope;
    if (isRunEvent(e, RunEvents.StepStarted) && e.data.irreversible)
      return { step: e.data.name, stepKey: e.data.idempotencyKey, version: e.version };
  }
  return isRunEvent(start, RunEvents.Checkpoint) ? start.data.pointOfNoReturn : undefined;
}

/**
 * One RunStarted and one last event per run: the status is decided by the last event alone. Listing without
 * the runs index (run-index.ts, which has checked the filter).
 */
export async function* runSummaries(
  store: EventStore,
  filter: RunFilter,
  after: string | undefined,
  batch: number,
): AsyncGenerator<RunSummary> {
  let from = after === undefined ? undefined : streamOf(after);
  for (;;) {
    const page = await store.listStreams({ prefix: streamOf(filter.idPrefix ?? ''), limit: batch, ...(from ? { after: from } : {}) });
    for (const stream of page) {
      const [first] = await store.read(stream.streamId, { from: 1, to: 1 });
      const [last] = await store.read(stream.streamId, { direction: 'backward', limit: 1 });
      if (!first || !isRunEvent(first, RunEvents.RunStarted) || !last) continue;
      const waitingFor = waitingForAfter(last);
      const summary: RunSummary = {
        runId: first.data.runId,
        workflow: first.data.workflow,
        workflowVersion: first.data.workflowVersion,
        status: statusAfter(last),
        ...(waitingFor === undefined ? {} : { waitingFor }),
        version: last.version,
        startedAt: first.recordedAt,
        updatedAt: last.recordedAt,
      };
      if ((!filter.status || filter.status === summary.status) && (!filter.workflow || filter.workflow === summary.workflow)) yield summary;
    }
    if (page.length < batch) return;
    from = page.at(-1)?.streamId;
  }
}

/** Throws RunNotFoundError when the run has no events. */
export async function requireRun(store: EventStore, runId: string): Promise<EventEnvelope> {
  const [tail] = await store.read(streamOf(runId), { direction: 'backward', limit: 1 });
  if (!tail) throw new RunNotFoundError(runId);
  return tail;
}
