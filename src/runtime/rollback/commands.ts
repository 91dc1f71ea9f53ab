import type { EventEnvelope } from '../../events/envelope.js';
import { ValidationError } from '../../events/errors.js';
import { effectiveHistory } from '../../projections/effective-history.js';
import type { EventStore } from '../../store/types.js';
import { CheckpointNotFoundError, IrreversibleStepError } from '../errors.js';
import { asRunEvent, type CheckpointIndex, isRunEvent, type RollbackAfter, RunEvents, START_LABEL } from '../events.js';
import { streamOf } from '../run-log.js';

// What operators' requests to the protocol need: a rollback request's shape,
// its target and the irreversible steps it would pass, the step a retry or a
// resolve is about. The requests themselves go through the run's driver
// (requests.ts), which appends their effect at the version it decided on.

export interface RollbackRequest {
  /** 'latest', 'start', a checkpoint label, or the version of an effective checkpoint. */
  to: 'latest' | 'start' | (string & {}) | number;
  reason: string;
  /** After the rollback: stay rolled back until resume() ('stop', default), continue at once ('retry'), or fail. */
  after?: RollbackAfter;
  /** Go back past irreversible steps, leaving their effects as they are (named in the marker). Without it, such a rollback is refused. */
  past?: 'irreversible';
}

/** Checks a rollback request's shape; nothing is read or written. */
export function checkRollbackRequest(request: RollbackRequest): RollbackAfter {
  if (!request || typeof request.reason !== 'string' || request.reason.trim() === '') {
    throw new ValidationError('a rollback needs a reason', [], "runtime.rollback(runId, { to: 'latest', reason: 'why' })");
  }
  const after = request.after ?? 'stop';
  if (!['stop', 'retry', 'fail'].includes(after))
    throw new ValidationError(`after must be 'stop', 'retry' or 'fail', got ${JSON.stringify(after)}`);
  if (request.past !== undefined && request.past !== 'irreversible')
    throw new ValidationError(`past must be 'irreversible' when given, got ${JSON.stringify(request.past)}`);
  const { to } = request;
  if (!(typeof to === 'string' && to.length > 0) && !(typeof to === 'number' && Number.isInteger(to) && to >= 1))
    throw new ValidationError(
      `to must be 'latest', 'start', a checkpoint label or a checkpoint's version, got ${JSON.stringify(to)}`,
      [],
      "runtime.rollback(runId, { to: 'latest', reason: 'why' })",
    );
  return after;
}

/**
 * The version and label a rollback goes back to. Found by reading the stream
 * backwards to the newest Checkpoint or RolledBack event, both of which carry
 * the checkpoint index: the cost depends on the distance to that event, not
 * on the length of the run.
 */
export async function resolveTarget(
  store: EventStore,
  runId: string,
  tail: EventEnvelope,
  to: RollbackRequest['to'],
): Promise<{ version: number; label: string }> {
  if (to === 'start') return { version: 1, label: START_LABEL };
  let index: CheckpointIndex | undefined;
  for (let from = tail.version; from >= 1 && !index; from -= 100) {
    const page = await store.read(streamOf(runId), { direction: 'backward', from, limit: 100 });
    for (const event of page) {
      const e = asRunEvent(event);
      if (e?.type === RunEvents.Checkpoint || e?.type === RunEvents.RolledBack) index = e.data.index;
      if (index) break;
    }
  }
  index ??= {};
  const entries = Object.entries(index).sort((a, b) => b[1] - a[1]);
  if (to === 'latest') {
    const [label, version] = entries[0] ?? [START_LABEL, 1];
    return { version, label };
  }
  if (typeof to === 'number') {
    if (to === 1) return { version: 1, label: START_LABEL };
    const hit = entries.find(([, v]) => v === to);
    if (hit) return { version: to, label: hit[0] };
  } else if (index[to] !== undefined) {
    return { version: index[to] as number, label: to };
  }
  throw new CheckpointNotFoundError(
    runId,
    to,
    entries.map(([l, v]) => `${l}@${v}`),
  );
}

/** The stepKey of the compensation a run in needs_attention waits on. */
export function blockedStep(tail: EventEnvelope): string {
  if (!isRunEvent(tail, RunEvents.NeedsAttention)) throw new Error('blockedStep() needs a NeedsAttention tail');
  return tail.data.stepKey;
}

/**
 * Refuses a rollback to `targetVersion` that would go back past an effective
 * irreversible step, unless the request accepts it. Reads the events after the
 * target only.
 */
export async function checkIrreversible(
  store: EventStore,
  runId: string,
  targetVersion: number,
  tail: EventEnvelope,
  past: RollbackRequest['past'],
): Promise<void> {
  if (past === 'irreversible' || tail.version <= targetVersion) return;
  const after = effectiveHistory(await store.read(streamOf(runId), { from: targetVersion + 1, to: tail.version }));
  for (const e of after) {
    if (isRunEvent(e, RunEvents.StepStarted) && e.data.irreversible)
      throw new IrreversibleStepError(runId, e.data.name, e.data.idempotencyKey);
  }
}
