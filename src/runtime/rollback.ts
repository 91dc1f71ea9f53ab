import type { EventEnvelope } from '../events/envelope.js';
import type { Clock } from './clock.js';
import { type Compensator, Halt } from './context.js';
import { serializeError } from './errors.js';
import { type CheckpointData, type CheckpointIndex, type RollbackRequestedData, RunEvents, type StepCompletedData } from './events.js';
import { compensationProgress, effectiveEvents } from './history.js';
import { backoffDelay, type RetryOptions } from './policy.js';
import type { RunLog } from './run-log.js';
import type { Workflow } from './workflow.js';

export interface ProtocolOptions {
  log: RunLog;
  request: EventEnvelope<string, RollbackRequestedData>;
  /** By step key: the closures of the completed steps (from the live pass, or a collect pass after a restart). */
  compensators: ReadonlyMap<string, Compensator>;
  clock: Clock;
  signal: AbortSignal;
  compensationRetry: RetryOptions;
}

/** The completed steps the request undoes, newest first: the effective ones between its target and itself. */
export function undoneSteps(events: readonly EventEnvelope[], request: EventEnvelope<string, RollbackRequestedData>): EventEnvelope[] {
  return effectiveEvents(events.slice(request.data.targetVersion, request.version - 1))
    .filter((e) => e.type === RunEvents.StepCompleted)
    .reverse();
}

/**
 * The closures for the undone steps without replaying `run`: each step's
 * StepCompleted says which hooks it was given inline, and the workflow's
 * `compensations`/`verifications` supply them by step name. Undefined when a
 * hook the step had is declared nowhere (or the event predates the record):
 * only a replay can get that closure back.
 */
export function declaredCompensators(
  workflow: Pick<Workflow, 'compensations' | 'verifications'>,
  undone: readonly EventEnvelope[],
): Map<string, Compensator> | undefined {
  const out = new Map<string, Compensator>();
  for (const event of undone) {
    const d = event.data as StepCompletedData;
    if (!Array.isArray(d.undo)) return undefined;
    const compensate = workflow.compensations?.[d.name];
    const verify = workflow.verifications?.[d.name];
    if ((d.undo.includes('compensate') && !compensate) || (d.undo.includes('verify') && !verify)) return undefined;
    if (compensate || verify)
      out.set(d.idempotencyKey, {
        step: d.name,
        key: d.idempotencyKey,
        result: d.result,
        compensate,
        verify,
        ...(d.compensationRetry ? { retry: d.compensationRetry } : {}),
      });
  }
  return out;
}

/**
 * Stages 3-5 of the rollback protocol (1-2 are the RollbackRequested event).
 * Idempotent by construction: it derives what is left to do from the events
 * after the request, so a process that died anywhere in here, or an operator
 * retry, picks up at the first step not yet compensated and verified. A
 * compensation that started and never ended runs again under the same
 * idempotency key; one that completed never runs again.
 */
export async function carryOutRollback(o: ProtocolOptions): Promise<'rolled_back' | 'needs_attention'> {
  const { log, request } = o;
  const { targetVersion } = request.data;
  // Only the slice after the target is read: the cost follows the distance to the checkpoint, not the run's length.
  const undone = undoneSteps(log.events, request);
  const progress = compensationProgress(log.events.slice(request.version));

  for (const event of undone) {
    const { idempotencyKey: key, name } = event.data as StepCompletedData;
    const comp = o.compensators.get(key);
    const p = progress.get(key);
    if (p?.blocked) return 'needs_attention';
    if (!comp?.compensate || p?.compensated) continue;
    let attempt = p?.openAttempt ?? (p?.attempts ?? 0) + 1;
    let started = p?.openAttempt !== undefined;
    const attempts = Math.max(1, (comp.retry ?? o.compensationRetry).attempts ?? 3);
    const io = (n: number) => ({ idempotencyKey: `${key}:undo`, stepKey: key, signal: o.signal, attempt: n });
    for (;;) {
      if (!started)
        await log.append([
          { type: RunEvents.CompensationStarted, data: { step: name, stepKey: key, idempotencyKey: `${key}:undo`, attempt } },
        ]);
      started = false;
      let failure: unknown;
      try {
        await comp.compensate(comp.result, io(attempt));
      } catch (error) {
        failure = error ?? new Error('compensation failed');
      }
      // Shut down mid-compensation: leave it open; whoever resumes re-runs it under the same key.
      if (o.signal.aborted) throw new Halt('paused', failure);
      if (failure === undefined) {
        await log.append([{ type: RunEvents.CompensationCompleted, data: { step: name, stepKey: key } }]);
        break;
      }
      const final = attempt >= attempts;
      const error = serializeError(failure);
      await log.append([{ type: RunEvents.CompensationFailed, data: { step: name, stepKey: key, attempt, error, final } }]);
      if (final) {
        await log.append([{ type: RunEvents.NeedsAttention, data: { step: name, stepKey: key, stage: 'compensation', error } }]);
        return 'needs_attention';
      }
      // Not journaled: the protocol is resumed from its events, never replayed, so the delay needs no record.
      await o.clock.sleep(backoffDelay(comp.retry ?? o.compensationRetry, attempt, Math.random()), o.signal);
      attempt++;
    }
  }

  for (const event of undone) {
    const { idempotencyKey: key, name } = event.data as StepCompletedData;
    const comp = o.compensators.get(key);
    if (!comp?.verify || progress.get(key)?.verified) continue;
    let ok: boolean;
    let error: ReturnType<typeof serializeError> | undefined;
    try {
      ok = (await comp.verify(comp.result, { idempotencyKey: `${key}:verify`, stepKey: key, signal: o.signal, attempt: 1 })) !== false;
      if (!ok) error = { name: 'VerifyFailed', message: `verify of step "${name}" returned false after compensation` };
    } catch (e) {
      ok = false;
      error = serializeError(e);
    }
    await log.append([{ type: RunEvents.Verified, data: { step: name, stepKey: key, ok, ...(error ? { error } : {}) } }]);
    if (!ok) {
      await log.append([{ type: RunEvents.NeedsAttention, data: { step: name, stepKey: key, stage: 'verify', error } }]);
      return 'needs_attention';
    }
  }

  const target = log.events[targetVersion - 1];
  const index: CheckpointIndex = target?.type === RunEvents.Checkpoint ? (target.data as CheckpointData).index : {};
  const { label, reason, trigger, after } = request.data;
  await log.append([
    { type: RunEvents.RolledBack, data: { requestVersion: request.version, targetVersion, label, reason, trigger, after, index } },
  ]);
  if (after === 'fail') {
    await log.append([{ type: RunEvents.RunFailed, data: { error: trigger.error ?? { name: 'RolledBack', message: reason } } }]);
  }
  return 'rolled_back';
}
