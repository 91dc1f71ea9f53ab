import type { EventEnvelope } from '../events/envelope.js';
import { type Doc, defineProjection } from '../projections/definition.js';
import type { FindQuery, FoundDoc } from '../projections/query.js';
import { asRunEvent, type RunEventOf, RunEvents } from './events.js';
import { type RunStatus, statusAfter } from './journal.js';

// Rewind's own read models, so the CLI, the API and the debugger list and
// summarise runs without replaying them. All are asynchronous (they work on
// every backend) and follow the effective history: a rollback takes the undone
// steps and checkpoints out of them. Streams of runs are `run-<id>`.

const RUN_PREFIX = 'run-';
const runIdOf = (streamId: string) => streamId.slice(RUN_PREFIX.length);
const ms = (iso: string) => Date.parse(iso);

export interface RunDoc extends Doc {
  runId: string;
  workflow: string;
  /** The version of the workflow the run started under, and goes on under until it ends. */
  workflowVersion: string;
  status: RunStatus;
  /** The step running now (started, not ended), if any. */
  currentStep: string | null;
  lastError: string | null;
  stepsStarted: number;
  stepsCompleted: number;
  stepsFailed: number;
  checkpoints: number;
  rollbacks: number;
  startedAt: string;
  /** When the run completed, failed or was cancelled. */
  endedAt: string | null;
  updatedAt: string;
  /** Stream version of the last event applied. */
  version: number;
}

export const runsProjection = defineProjection<RunDoc, 'runs'>({
  name: 'runs',
  // 2: workflowVersion.
  version: 2,
  streamPrefix: RUN_PREFIX,
  key: (e) => e.streamId,
  evolve(doc, event) {
    const e = asRunEvent(event);
    if (e?.type === RunEvents.RunStarted) {
      const d = e.data;
      return {
        runId: d.runId ?? runIdOf(e.streamId),
        workflow: d.workflow,
        workflowVersion: d.workflowVersion,
        status: 'running',
        currentStep: null,
        lastError: null,
        stepsStarted: 0,
        stepsCompleted: 0,
        stepsFailed: 0,
        checkpoints: 0,
        rollbacks: 0,
        startedAt: e.recordedAt,
        endedAt: null,
        updatedAt: e.recordedAt,
        version: e.version,
      };
    }
    // A run always starts with RunStarted; anything else first is not a run of ours.
    if (!doc) return undefined;
    const next: RunDoc = { ...doc, status: statusAfter(event), updatedAt: event.recordedAt, version: event.version };
    switch (e?.type) {
      case RunEvents.StepStarted:
        next.stepsStarted++;
        next.currentStep = e.data.name;
        break;
      case RunEvents.StepCompleted:
        next.stepsCompleted++;
        next.currentStep = null;
        break;
      case RunEvents.StepFailed:
        next.stepsFailed++;
        next.lastError = `${e.data.name}: ${e.data.error?.message ?? 'failed'}`;
        next.currentStep = null;
        break;
      case RunEvents.Checkpoint:
        next.checkpoints++;
        break;
      case RunEvents.RolledBack:
        next.rollbacks++;
        next.currentStep = null;
        break;
      case RunEvents.RunFailed:
        next.lastError = e.data.error?.message ?? next.lastError;
        next.endedAt = e.recordedAt;
        break;
      case RunEvents.RunCompleted:
      case RunEvents.RunCancelled:
        next.endedAt = e.recordedAt;
        break;
    }
    return next;
  },
});

/** Calls of one step name (a tool) in one run. Sum them across runs with `toolStats`. */
export interface ToolStepsDoc extends Doc {
  runId: string;
  tool: string;
  calls: number;
  failures: number;
  /** Over completed and failed attempts. */
  totalLatencyMs: number;
  maxLatencyMs: number;
  /** Start time (epoch ms) of attempts not ended yet, by idempotency key and attempt. */
  open: { [attempt: string]: number };
}

const attemptKey = (key: string, attempt: number | undefined) => `${key}#${attempt ?? 1}`;

type StepEvent = RunEventOf<'StepStarted'> | RunEventOf<'StepCompleted'> | RunEventOf<'StepFailed'>;

function stepEvent(event: EventEnvelope): StepEvent | undefined {
  const e = asRunEvent(event);
  return e?.type === RunEvents.StepStarted || e?.type === RunEvents.StepCompleted || e?.type === RunEvents.StepFailed ? e : undefined;
}

export const toolStepsProjection = defineProjection<ToolStepsDoc, 'tool-steps'>({
  name: 'tool-steps',
  version: 1,
  streamPrefix: RUN_PREFIX,
  types: [RunEvents.StepStarted, RunEvents.StepCompleted, RunEvents.StepFailed],
  key(event) {
    const e = stepEvent(event);
    return e && `${e.streamId}/${e.data.name}`;
  },
  evolve(doc, event) {
    const e = stepEvent(event);
    if (!e) return doc;
    const d = e.data;
    const next: ToolStepsDoc = doc ?? {
      runId: runIdOf(e.streamId),
      tool: d.name,
      calls: 0,
      failures: 0,
      totalLatencyMs: 0,
      maxLatencyMs: 0,
      open: {},
    };
    if (e.type === RunEvents.StepStarted) {
      next.calls++;
      next.open[attemptKey(d.idempotencyKey, e.data.attempt)] = ms(e.recordedAt);
      return next;
    }
    if (e.type === RunEvents.StepFailed) next.failures++;
    // A completion carries no attempt number: it ends the newest open attempt of its key.
    const key =
      e.type === RunEvents.StepFailed
        ? attemptKey(d.idempotencyKey, e.data.attempt)
        : Object.keys(next.open)
            .filter((k) => k.startsWith(`${d.idempotencyKey}#`))
            .sort((a, b) => Number(b.split('#').pop()) - Number(a.split('#').pop()))[0];
    // An attempt a crash left open and that ran again is timed from then (ResumedAttempt).
    const resumedAt = e.data.resumedAt;
    const started = key === undefined ? undefined : resumedAt === undefined ? next.open[key] : ms(resumedAt);
    if (key !== undefined && started !== undefined) {
      const latency = Math.max(0, ms(e.recordedAt) - started);
      next.totalLatencyMs += latency;
      next.maxLatencyMs = Math.max(next.maxLatencyMs, latency);
      delete next.open[key];
    }
    return next;
  },
});

export interface CheckpointDoc extends Doc {
  runId: string;
  label: string;
  version: number;
  recordedAt: string;
}

/** The effective checkpoints of every run: those a rollback went past disappear. */
export const checkpointsProjection = defineProjection<CheckpointDoc, 'checkpoints'>({
  name: 'checkpoints',
  version: 1,
  streamPrefix: RUN_PREFIX,
  types: [RunEvents.Checkpoint],
  key: (e) => `${e.streamId}@${e.version}`,
  evolve(doc, event) {
    const e = asRunEvent(event);
    if (e?.type !== RunEvents.Checkpoint) return doc;
    return { runId: runIdOf(e.streamId), label: e.data.label, version: e.version, recordedAt: e.recordedAt };
  },
});

export interface RollbackDoc extends Doc {
  runId: string;
  /** The marker's stream version. */
  version: number;
  targetVersion: number;
  label: string;
  reason: string;
  trigger: string;
  recordedAt: string;
}

/** Every completed rollback (a later, deeper rollback does not erase the record of an earlier one). */
export const rollbacksProjection = defineProjection<RollbackDoc, 'rollbacks'>({
  name: 'rollbacks',
  version: 1,
  streamPrefix: RUN_PREFIX,
  types: [RunEvents.RolledBack],
  key: (e) => `${e.streamId}#${e.version}`,
  evolve(doc, event) {
    const e = asRunEvent(event);
    if (e?.type !== RunEvents.RolledBack) return doc;
    const d = e.data;
    return {
      runId: runIdOf(e.streamId),
      version: e.version,
      targetVersion: d.targetVersion,
      label: d.label ?? '',
      reason: d.reason ?? '',
      trigger: d.trigger?.kind ?? 'requested',
      recordedAt: e.recordedAt,
    };
  },
});

/** The built-in read models; pass them (plus your own) to openProjections. */
export const builtInProjections = [runsProjection, toolStepsProjection, checkpointsProjection, rollbacksProjection] as const;

export interface ToolStats {
  tool: string;
  calls: number;
  failures: number;
  meanLatencyMs: number;
  maxLatencyMs: number;
}

/** Per-tool totals across runs, from the tool-steps read model. */
export async function toolStats(
  projections: { find(name: 'tool-steps', query?: FindQuery): Promise<FoundDoc<ToolStepsDoc>[]> },
  tool?: string,
): Promise<ToolStats[]> {
  const totals = new Map<string, ToolStats & { ended: number; latency: number }>();
  for (let offset = 0; ; offset += 10_000) {
    const page = await projections.find('tool-steps', { ...(tool ? { where: { tool } } : {}), limit: 10_000, offset });
    for (const { doc } of page) {
      const t = totals.get(doc.tool) ?? { tool: doc.tool, calls: 0, failures: 0, meanLatencyMs: 0, maxLatencyMs: 0, ended: 0, latency: 0 };
      t.calls += doc.calls;
      t.failures += doc.failures;
      t.ended += doc.calls - Object.keys(doc.open).length;
      t.latency += doc.totalLatencyMs;
      t.maxLatencyMs = Math.max(t.maxLatencyMs, doc.maxLatencyMs);
      totals.set(doc.tool, t);
    }
    if (page.length < 10_000) break;
  }
  return [...totals.values()]
    .map(({ ended, latency, ...t }) => ({ ...t, meanLatencyMs: ended > 0 ? latency / ended : 0 }))
    .sort((a, b) => (a.tool < b.tool ? -1 : 1));
}
