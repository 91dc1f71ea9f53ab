import type { EventEnvelope, Json } from '../../events/envelope.js';
import type { SerializedError } from '../errors.js';
import {
  asRunEvent,
  type CheckpointIndex,
  isRunEvent,
  type NeedsAttentionData,
  type RolledBackData,
  type RunEventOf,
  RunEvents,
  type UndoHook,
} from '../events.js';
import { effectiveEvents, statusAfter } from '../journal.js';
import type { RetryOptions } from '../policy.js';

// The rollback protocol's decider: given a run's events, what is the next
// action? Pure: no I/O, no clock, no closures. The executor (execute.ts)
// carries the action out and is the only code that appends protocol events;
// then the driver asks again. A crash anywhere is recovered the same way:
// read the events, ask the decider.
//
// The states of a run and what moves it on:
//
//   running ──forward pass──▶ completed | failed | RollbackRequested
//   RollbackRequested (rolling_back):
//     1. settle   every step in the window (after the target, before the
//                 request) that started and has no end, and has an undo hook:
//                 run it again under its own key to learn its outcome (the
//                 external system deduplicates by key). Newest started first.
//     2. compensate every completed step in the window with a compensation,
//                 newest completed first (a settled step counts as completed
//                 last). Each attempt: CompensationStarted, then Completed or
//                 Failed { final, retryAt }; a final failure and NeedsAttention
//                 are one append.
//     3. verify   each step with a verify hook; a failed check and
//                 NeedsAttention are one append.
//     4. finish   RolledBack, and in the same append RunFailed when the
//                 request says after 'fail'. A request owned by a coordinator
//                 rests here: the coordinator writes every participant's
//                 marker in one commit (group.ts).
//   needs_attention: rests until an operator appends CompensationRetried
//                 (a fresh budget, same key) or ResolvedByHand.
//   waiting (a WaitStarted at the tail): rests until its mailbox holds a
//                 signal of that name or its deadline has passed; then forward
//                 (the pass records the answer or the timeout, a trigger).
//   rolled_back: after 'retry' goes forward at once; after 'stop' rests until
//                 resumed.
//
// An irreversible step in the window is left as it is and named in the marker
// (the request said `past: 'irreversible'`; commands.ts and the pass refuse a
// rollback past one otherwise).
//
// A step that started and has no end is "in doubt": its effect may have
// happened. It is never dropped: with an undo hook it is settled, then undone;
// without one it is left as it is and named in the marker's `inDoubt`, like a
// completed step without a compensation. A settle attempt that fails means
// the step had no effect (the contract every step already has: a step that
// throws leaves no effect, or its key makes a later call return the first
// outcome).

/** Which undo hooks a step has. */
export interface Hooks {
  compensate: boolean;
  verify: boolean;
}

export interface DecideOptions {
  /**
   * The step's undo hooks: from the closures a pass gathered, or from the hooks
   * its events journaled plus the workflow's declared ones. Undefined when
   * neither says (events of older builds): the decider then asks for a replay.
   */
  hooks(step: { name: string; key: string; undo?: readonly UndoHook[] }): Hooks | undefined;
  /** Attempts and backoff of a compensation whose step journaled none. */
  compensationRetry: RetryOptions;
  /** An operator resumed the run: a rollback that stopped (after 'stop') goes forward. */
  resume?: boolean;
  /**
   * For a run parked on a wait: the names of the signals sent to it and not
   * used yet, and the time now. Without it a parked run rests.
   */
  mailbox?: { pending: readonly string[]; now: number };
}

/** One step the rollback undoes, as its events tell it. */
export interface StepRef {
  seq: number;
  name: string;
  key: string;
  /** The undo hooks its events journaled (absent on events of older builds). */
  undo?: UndoHook[];
}

/** Where a run rests until something outside the protocol moves it. */
export type Rest = 'completed' | 'failed' | 'cancelled' | 'stopped' | 'waiting' | 'attention' | 'coordinator';

export type ProtocolAction =
  /** Drive the workflow code: replay the journal, then go live. */
  | { kind: 'forward' }
  /**
   * `marker`: for a request owned by a coordinator, the marker it will write
   * (its compensations are done). `until`: for a wait with a timeout, when it
   * runs out (drive the run again then).
   */
  | { kind: 'rest'; why: Rest; marker?: RolledBackData; until?: number }
  /** The events do not say which undo hooks a step has: replay `run` (without going live) to learn them. */
  | { kind: 'replay'; step: StepRef }
  /** Run an in-doubt step again under its key; `reopen`: re-run the open attempt, else start `attempt` anew. */
  | { kind: 'settle'; step: StepRef; attempt: number; reopen: boolean; notBefore?: number }
  /** Undo one step's effect; `reopen`: re-run the open attempt, else start `attempt` anew. */
  | { kind: 'compensate'; step: StepRef; result?: Json; attempt: number; reopen: boolean; notBefore?: number; retry: RetryOptions }
  | { kind: 'verify'; step: StepRef; result?: Json }
  /** A final failure recorded without its NeedsAttention (logs of older builds, which wrote them apart). */
  | { kind: 'attention'; attention: NeedsAttentionData }
  /** The marker, and RunFailed with it when `fail` is set: one append. */
  | { kind: 'finish'; marker: RolledBackData; fail?: SerializedError }
  /** A RolledBack { after: 'fail' } recorded without its RunFailed (logs of older builds). */
  | { kind: 'fail'; error: SerializedError };

/** The RollbackRequested the protocol has not finished, if any. */
export function pendingRequest(events: readonly EventEnvelope[]): RunEventOf<'RollbackRequested'> | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i] as EventEnvelope;
    if (isRunEvent(event, RunEvents.RolledBack)) return undefined;
    if (isRunEvent(event, RunEvents.RollbackRequested)) return event;
  }
  return undefined;
}

/**
 * The next action for a run. `events` is a contiguous suffix of the run's
 * stream (versions increasing by one) that starts at or before the pending
 * request's target, or the whole stream.
 */
export function nextAction(events: readonly EventEnvelope[], options: DecideOptions): ProtocolAction {
  const last = events[events.length - 1];
  if (!last) throw new Error('nextAction() needs at least one event');
  const request = pendingRequest(events);
  if (request) return decideRollback(events, request, options);
  const e = asRunEvent(last);
  switch (e?.type) {
    case RunEvents.RunCompleted:
      return { kind: 'rest', why: 'completed' };
    case RunEvents.RunFailed:
      return { kind: 'rest', why: 'failed' };
    case RunEvents.RunCancelled:
      return { kind: 'rest', why: 'cancelled' };
    case RunEvents.RolledBack:
      if (e.data.after === 'fail') return { kind: 'fail', error: failureOf(e.data) };
      if (e.data.after === 'stop' && !options.resume) return { kind: 'rest', why: 'stopped' };
      return { kind: 'forward' };
    case RunEvents.WaitStarted:
    case RunEvents.SignalReceived:
      return statusAfter(e) === 'waiting' ? decideWait(events, e.data.seq, e.data.name, options) : { kind: 'forward' };
    default:
      return { kind: 'forward' };
  }
}

/** A run parked on a wait goes forward once a signal of that name is in its mailbox or the wait's time is up. */
function decideWait(events: readonly EventEnvelope[], seq: number, name: string, o: DecideOptions): ProtocolAction {
  let timeoutAt: number | undefined;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i] as EventEnvelope;
    if (isRunEvent(e, RunEvents.WaitStarted) && e.data.seq === seq) {
      timeoutAt = e.data.timeoutAt;
      break;
    }
  }
  if (o.mailbox?.pending.includes(name)) return { kind: 'forward' };
  if (timeoutAt !== undefined && o.mailbox && o.mailbox.now >= timeoutAt) return { kind: 'forward' };
  return { kind: 'rest', why: 'waiting', ...(timeoutAt === undefined ? {} : { until: timeoutAt }) };
}

interface WindowStep extends StepRef {
  state: 'completed' | 'open' | 'failed' | 'retry-wait';
  /** Its effect cannot be undone: the request accepted going back past it, and it is left as it is. */
  irreversible?: boolean;
  attempt: number;
  retryAt?: number;
  result?: Json;
  undo?: UndoHook[];
  compensationRetry?: RetryOptions;
  /** Version of the event that started its latest attempt / ended it: what "newest first" orders by. */
  startedAt: number;
  endedAt: number;
}

interface Progress {
  compensated: boolean;
  verified: boolean;
  /** Attempts since the last operator retry. */
  attempts: number;
  /** An attempt that started and never ended (a crash): run it again under the same key. */
  openAttempt?: number;
  lastFailure?: { final: boolean; retryAt?: number; error: SerializedError; step: string };
  /** A verify hook found the world wrong. */
  verifyFailed?: { error?: SerializedError; step: string };
  blocked: boolean;
}

function decideRollback(events: readonly EventEnvelope[], request: RunEventOf<'RollbackRequested'>, o: DecideOptions): ProtocolAction {
  const base = (events[0] as EventEnvelope).version;
  const { targetVersion } = request.data;
  if (targetVersion < base) throw new Error(`nextAction() needs the events from version ${targetVersion}, got them from ${base}`);
  const steps = new Map<string, WindowStep>();
  for (const event of effectiveEvents(events.slice(targetVersion - base + 1, request.version - base))) track(steps, event);
  const progress = new Map<string, Progress>();
  for (const event of events.slice(request.version - base + 1)) {
    track(steps, event);
    record(progress, event);
  }
  const of = (key: string): Progress | undefined => progress.get(key);

  // Waiting for an operator, or a fact recorded without its NeedsAttention by an older build.
  for (const [stepKey, p] of progress) {
    if (p.blocked) return { kind: 'rest', why: 'attention' };
    if (p.lastFailure?.final) {
      const { step, error } = p.lastFailure;
      return { kind: 'attention', attention: { step, stepKey, stage: 'compensation', error } };
    }
    if (p.verifyFailed) {
      const { step, error } = p.verifyFailed;
      return {
        kind: 'attention',
        attention: { step, stepKey, stage: 'verify', error: error ?? { name: 'VerifyFailed', message: `verify of step "${step}" failed` } },
      };
    }
  }

  // Irreversible steps are left as they are (the request accepted it: commands.ts and the pass refuse otherwise).
  const irreversible = [...steps.values()]
    .filter((s) => s.irreversible && s.state !== 'failed')
    .map((s) => ({ step: s.name, stepKey: s.key }));
  const ordered = [...steps.values()].filter((s) => !s.irreversible);
  const inDoubt: Array<{ step: string; stepKey: string }> = [];
  // 1. Settle in-doubt steps, newest started first.
  for (const step of [...ordered].sort((a, b) => b.startedAt - a.startedAt)) {
    if (step.state !== 'open' && step.state !== 'retry-wait') continue;
    if (of(step.key)?.compensated) continue;
    const hooks = o.hooks(step);
    if (!hooks) return { kind: 'replay', step: ref(step) };
    if (!hooks.compensate && !hooks.verify) {
      inDoubt.push({ step: step.name, stepKey: step.key });
      continue;
    }
    if (step.state === 'open') return { kind: 'settle', step: ref(step), attempt: step.attempt, reopen: true };
    return {
      kind: 'settle',
      step: ref(step),
      attempt: step.attempt + 1,
      reopen: false,
      ...(step.retryAt === undefined ? {} : { notBefore: step.retryAt }),
    };
  }

  // 2. Compensate completed steps, newest completed first.
  const completed = ordered.filter((s) => s.state === 'completed').sort((a, b) => b.endedAt - a.endedAt);
  const hooksOf = new Map<string, Hooks>();
  for (const step of completed) {
    const hooks = o.hooks(step);
    if (!hooks) return { kind: 'replay', step: ref(step) };
    hooksOf.set(step.key, hooks);
  }
  for (const step of completed) {
    const p = of(step.key);
    if (!hooksOf.get(step.key)?.compensate || p?.compensated) continue;
    const retry = step.compensationRetry ?? o.compensationRetry;
    const result = step.result === undefined ? {} : { result: step.result };
    if (p?.openAttempt !== undefined)
      return { kind: 'compensate', step: ref(step), ...result, attempt: p.openAttempt, reopen: true, retry };
    const notBefore = p?.lastFailure?.retryAt;
    return {
      kind: 'compensate',
      step: ref(step),
      ...result,
      attempt: (p?.attempts ?? 0) + 1,
      reopen: false,
      ...(notBefore === undefined ? {} : { notBefore }),
      retry,
    };
  }

  // 3. Verify, in the same order.
  for (const step of completed) {
    if (!hooksOf.get(step.key)?.verify || of(step.key)?.verified) continue;
    return { kind: 'verify', step: ref(step), ...(step.result === undefined ? {} : { result: step.result }) };
  }

  // 4. Finish.
  const marker = markerOf(events, request, inDoubt, irreversible);
  if (request.data.coordinator !== undefined) return { kind: 'rest', why: 'coordinator', marker };
  return { kind: 'finish', marker, ...(marker.after === 'fail' ? { fail: failureOf(marker) } : {}) };
}

/** The RolledBack marker that ends a request: what it undid back to, why, and the checkpoint index as of the target. */
export function markerOf(
  events: readonly EventEnvelope[],
  request: RunEventOf<'RollbackRequested'>,
  inDoubt: Array<{ step: string; stepKey: string }> = [],
  irreversible: Array<{ step: string; stepKey: string }> = [],
): RolledBackData {
  const base = (events[0] as EventEnvelope).version;
  const { targetVersion, label, unreached, reason, trigger, after } = request.data;
  const target = events[targetVersion - base];
  const index: CheckpointIndex = target && isRunEvent(target, RunEvents.Checkpoint) ? target.data.index : {};
  return {
    requestVersion: request.version,
    targetVersion,
    label,
    ...(unreached === undefined ? {} : { unreached }),
    reason,
    trigger,
    after,
    index,
    ...(inDoubt.length ? { inDoubt } : {}),
    ...(irreversible.length ? { irreversible } : {}),
  };
}

/** What a run that failed after a rollback failed with: the trigger's error, or the rollback itself. */
function failureOf(marker: Pick<RolledBackData, 'trigger' | 'reason'>): SerializedError {
  return marker.trigger.error ?? { name: 'RolledBack', message: marker.reason };
}

function ref(step: WindowStep): StepRef {
  return { seq: step.seq, name: step.name, key: step.key, ...(step.undo ? { undo: step.undo } : {}) };
}

/** A step's events, in the window and (settling) after the request. */
function track(steps: Map<string, WindowStep>, event: EventEnvelope): void {
  const e = asRunEvent(event);
  switch (e?.type) {
    case RunEvents.StepStarted: {
      const { seq, name, idempotencyKey: key, attempt, undo, irreversible } = e.data;
      const known = steps.get(key);
      steps.set(key, {
        ...(known ?? {}),
        seq,
        name,
        key,
        state: 'open',
        attempt,
        ...(irreversible ? { irreversible } : {}),
        ...(undo ? { undo } : known?.undo ? { undo: known.undo } : {}),
        startedAt: known?.startedAt ?? e.version,
        endedAt: e.version,
      });
      break;
    }
    case RunEvents.StepCompleted: {
      const step = steps.get(e.data.idempotencyKey);
      if (!step) break;
      step.state = 'completed';
      step.endedAt = e.version;
      if (e.data.result !== undefined) step.result = e.data.result;
      if (e.data.undo) step.undo = e.data.undo;
      if (e.data.compensationRetry) step.compensationRetry = e.data.compensationRetry;
      break;
    }
    case RunEvents.StepFailed: {
      const step = steps.get(e.data.idempotencyKey);
      if (!step) break;
      // Outside a rollback a failed attempt only waits for its retry: no attempt is open, nothing happened.
      step.state = e.data.final || !e.data.settling ? 'failed' : 'retry-wait';
      step.endedAt = e.version;
      if (e.data.retryAt !== undefined) step.retryAt = e.data.retryAt;
      break;
    }
  }
}

/** How far the protocol got with each step (by its key), from the events after the request. */
function record(progress: Map<string, Progress>, event: EventEnvelope): void {
  const e = asRunEvent(event);
  if (!e) return;
  const of = (key: string): Progress => {
    let p = progress.get(key);
    if (!p) {
      p = { compensated: false, verified: false, attempts: 0, blocked: false };
      progress.set(key, p);
    }
    return p;
  };
  switch (e.type) {
    case RunEvents.CompensationStarted: {
      const p = of(e.data.stepKey);
      p.attempts = e.data.attempt;
      p.openAttempt = e.data.attempt;
      p.lastFailure = undefined;
      break;
    }
    case RunEvents.CompensationCompleted: {
      const p = of(e.data.stepKey);
      p.compensated = true;
      p.openAttempt = undefined;
      break;
    }
    case RunEvents.CompensationFailed: {
      const { stepKey, step, final, retryAt, error } = e.data;
      const p = of(stepKey);
      p.openAttempt = undefined;
      p.lastFailure = { final, error, step, ...(retryAt === undefined ? {} : { retryAt }) };
      break;
    }
    case RunEvents.Verified: {
      const p = of(e.data.stepKey);
      p.verified = e.data.ok;
      p.verifyFailed = e.data.ok ? undefined : { step: e.data.step, ...(e.data.error ? { error: e.data.error } : {}) };
      break;
    }
    case RunEvents.NeedsAttention: {
      const p = of(e.data.stepKey);
      p.blocked = true;
      // The attention now records the failure: it is not asked for again.
      p.lastFailure = undefined;
      p.verifyFailed = undefined;
      break;
    }
    case RunEvents.CompensationRetried:
      progress.set(e.data.stepKey, { compensated: false, verified: false, attempts: 0, blocked: false });
      break;
    case RunEvents.ResolvedByHand:
      progress.set(e.data.stepKey, { compensated: true, verified: true, attempts: of(e.data.stepKey).attempts, blocked: false });
      break;
  }
}
