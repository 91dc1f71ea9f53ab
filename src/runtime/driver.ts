import type { EventEnvelope, Json } from '../events/envelope.js';
import { ConcurrencyError, LeaseLostError } from '../events/errors.js';
import type { EventStore, Fence } from '../store/types.js';
import type { Breakers } from './breaker.js';
import type { Clock } from './clock.js';
import { Halt, Pass } from './context.js';
import { isRunEvent, type NewRunEvent, type RolledBackData, RunEvents, type RunStartedData } from './events.js';
import { consumedSignals, statusAfter } from './journal.js';
import type { RetryOptions } from './policy.js';
import {
  effectOf,
  inboxOf,
  REQUEST_HANDLED,
  type RequestHandledData,
  type RunRequestData,
  readInbox,
  refusalOf,
  sameRequest,
} from './requests.js';
import { Closures } from './rollback/closures.js';
import { nextAction, type ProtocolAction, type Rest } from './rollback/decide.js';
import { carryOut, recordOutcome } from './rollback/execute.js';
import { RunLog } from './run-log.js';
import type { Workflow } from './workflow.js';

// The driving loop of one run: read the events, ask the decider, carry the
// action out (a forward pass of the workflow code, or one step of the
// rollback protocol), and again, until the run rests. Nothing here decides
// what comes next, and nothing here appends: the decider and the executor do.

export interface DriverContext {
  store: EventStore;
  /** The code of a run: that version of the workflow (a typed error when it is not registered). */
  workflow(name: string, version: string): Workflow;
  clock: Clock;
  breakers: Breakers;
  compensationRetry: RetryOptions;
}

export interface DriveControl {
  /** Aborted on cancel or shutdown: nothing new starts, an effect in flight is left to run again under its key. */
  signal: AbortSignal;
  /** An operator's rollback waits for the code to reach a ctx call. */
  shouldPause: () => boolean;
  /**
   * 'drive': what a worker does with a run it claimed; a run rolled back with
   * after 'stop' stays stopped. 'resume': an operator's resume, which also
   * continues such a run.
   */
  mode: 'drive' | 'resume';
  /** A run this drive creates: its RunStarted is written with its first step, one commit (RunLog.fresh). */
  create?: RunStartedData;
  /** The run's lease, carried by every append of this drive (ownership.ts). */
  fence?: Fence;
  /** What the steps of a pass see: aborted on shutdown, and by a cancel request (the step stays open, the run is cancelled). Default `signal`. */
  stepSignal?: () => AbortSignal;
  /** Requests may wait in the inbox: the pass stops at its next ctx call and the driver carries them out (requests.ts). */
  requested?: () => boolean;
  /** Called as the driver reads the inbox for requests: whatever arrived before is seen. */
  readingRequests?: () => void;
}

/**
 * Where a drive ended: the log as this driver last saw it, and why it stopped
 * ('lost': another writer took the run over; 'exists': the run to create was
 * there already, and this drive wrote nothing).
 */
export type DriveResult = (
  | { log: RunLog; stop: Rest | 'paused'; marker?: RolledBackData; until?: number }
  | { stop: 'lost' | 'exists' }
) & {
  /** The inbox's version when the driver last read it (0: not read): anything after it arrived unseen. */
  inboxSeen: number;
};

/** Drives the run until it rests, is told to stop, or someone else writes to it. */
export async function driveRun(c: DriverContext, runId: string, control: DriveControl): Promise<DriveResult> {
  const log = control.create
    ? RunLog.fresh(c.store, control.create, new Date(c.clock.now()))
    : await RunLog.readBack(c.store, runId, protocolFloor());
  log.fence = control.fence;
  const workflow = c.workflow(log.started.data.workflow, log.started.data.workflowVersion);
  const requested = () => log.version > 0 && (control.requested?.() ?? false);
  const stopped = () => control.shouldPause() || control.signal.aborted;
  let resume = control.mode === 'resume';
  let closures = new Closures(workflow);
  let parkedAt: number | undefined;
  let inboxSeen = 0;
  const x = { log, clock: c.clock, breakers: c.breakers, signal: control.signal };
  const inbox = async () => {
    const read = await readInbox(c.store, runId);
    inboxSeen = Math.max(inboxSeen, read.version);
    return read;
  };
  const mailbox = async () => (await inbox()).signals;
  const pass = (mode: 'run' | 'replay') =>
    new Pass({
      workflow,
      log,
      breakers: c.breakers,
      clock: c.clock,
      mode,
      signal: control.stepSignal?.() ?? control.signal,
      shouldPause: () => control.shouldPause() || requested(),
      mailbox,
    });
  /**
   * The requests waiting in the inbox, carried out in order: each one's effect
   * on the run's stream (or nothing, when the run has moved where it is
   * refused) and its RequestHandled in the inbox, one append. Then the
   * protocol decides afresh (a rollback's compensations come from a replay).
   */
  const carryOutRequests = async () => {
    control.readingRequests?.();
    await log.flush();
    const { pending } = await inbox();
    // A cancel first: it has aborted the steps in flight already, so it must not meet a run another request moved
    // where it is refused (a rollback begun), which would leave those steps to run again.
    const ordered = [...pending.filter((r) => r.data.kind === 'cancel'), ...pending.filter((r) => r.data.kind !== 'cancel')];
    const carriedOut: RunRequestData[] = [];
    for (const request of ordered) {
      let effect: NewRunEvent[] = [];
      let handled: RequestHandledData = { request: request.id, outcome: 'done' };
      // The same request twice (two callers at once, the second posted before the first was seen): the second joins the first.
      const joins = carriedOut.some((done) => sameRequest(done, request.data));
      try {
        if (!joins) effect = await effectOf(c.store, runId, log.last, request.data);
        if (!joins) carriedOut.push(request.data);
      } catch (error) {
        handled = refusalOf(request, error);
      }
      const metadata = { request: request.id, ...(request.actor ? { actor: request.actor } : {}) };
      // The protocol reads back to a rollback's target.
      for (const e of effect) if (e.type === RunEvents.RollbackRequested) await log.loadFrom(e.data.targetVersion);
      await log.recordWith(
        effect.map((e) => ({ ...e, metadata })),
        { streamId: inboxOf(runId), events: [{ type: REQUEST_HANDLED, data: handled as unknown as Json }] },
      );
    }
    closures = new Closures(workflow);
    parkedAt = undefined;
  };
  /** For a run parked on a wait: what its mailbox holds that it has not used, read afresh each time it is asked. */
  const waiting = async () => {
    if (statusAfter(log.last) !== 'waiting') return undefined;
    await log.loadAll();
    const used = consumedSignals(log.events);
    const pending = (await mailbox()).filter((s) => !used.has(s.id)).map((s) => s.name);
    return { pending, now: c.clock.now() };
  };
  const replay = async () => {
    await log.loadAll();
    const replayed = pass('replay');
    const outcome = await replayed.execute(log.started.data.input);
    if (outcome.kind === 'halted' && outcome.halt.reason === 'error') throw outcome.halt.error;
    closures = new Closures(workflow, replayed, true);
  };
  try {
    while (!stopped()) {
      if (requested()) {
        await carryOutRequests();
        continue;
      }
      const box = await waiting();
      // A run being created has nothing to decide on yet: it goes forward.
      const action: ProtocolAction =
        log.version === 0
          ? { kind: 'forward' }
          : nextAction(log.events, {
              hooks: (s) => closures.hooks(s),
              compensationRetry: c.compensationRetry,
              resume,
              ...(box ? { mailbox: box } : {}),
            });
      if (action.kind === 'rest')
        return {
          log,
          stop: action.why,
          ...(action.marker ? { marker: action.marker } : {}),
          ...(action.until === undefined ? {} : { until: action.until }),
          inboxSeen,
        };
      if (action.kind === 'replay') {
        await replay();
        continue;
      }
      if (action.kind !== 'forward') {
        if ((await carryOut(action, closures, x)) === 'replay') await replay();
        continue;
      }
      // ...but a run that parked and wrote nothing since rests (its last event is not the wait: the wait was journaled
      // already, or the log is an older build's, whose wait could be followed by another branch's events).
      if (parkedAt === log.version) return { log, stop: 'waiting', inboxSeen };
      resume = false;
      await log.loadAll();
      const forward = pass('run');
      const outcome = await forward.execute(log.started.data.input);
      if (outcome.kind === 'halted') {
        // What the pass held back is written before the run rests (a step that finished gets its end recorded).
        await log.flush();
        // Stopped for a request: carried out at the top of the loop.
        if (outcome.halt.reason === 'paused' && requested() && !stopped()) continue;
        if (outcome.halt.reason === 'paused') return { log, stop: 'paused', inboxSeen };
        // Parked on a wait: ask again (a signal may have come while it parked)...
        if (outcome.halt.reason === 'waiting') {
          parkedAt = log.version;
          continue;
        }
        throw outcome.halt.error;
      }
      // The closures the pass met serve the rollback it may have asked for.
      closures = new Closures(workflow, forward);
      await recordOutcome(outcome, workflow, log);
    }
  } catch (error) {
    // Someone else wrote to the run (another driver whose lease it is now, an older build's operator): it is theirs.
    if (error instanceof LeaseLostError) return { stop: 'lost', inboxSeen };
    if (error instanceof ConcurrencyError) return { stop: log.version === 0 ? 'exists' : 'lost', inboxSeen };
    if (error instanceof Halt && error.reason === 'paused') return { log, stop: 'paused', inboxSeen };
    throw error;
  }
  return { log, stop: 'paused', inboxSeen };
}

/**
 * How far back the driver reads: the newest event alone when no rollback is
 * pending; otherwise back to the pending request's target, whatever the
 * run's length. A forward pass reads the rest when it needs the journal.
 */
export function protocolFloor(): (event: EventEnvelope) => number | undefined {
  let newest = true;
  return (event) => {
    const first = newest;
    newest = false;
    if (first) {
      const status = statusAfter(event);
      if (status !== 'rolling_back' && status !== 'needs_attention') return event.version;
    }
    if (isRunEvent(event, RunEvents.RollbackRequested)) return event.data.targetVersion;
    if (isRunEvent(event, RunEvents.RolledBack)) return event.version;
    return undefined;
  };
}
