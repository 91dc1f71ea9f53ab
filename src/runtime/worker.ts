import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ValidationError } from '../events/errors.js';
import type { EventStore } from '../store/types.js';
import { RunNotFoundError, type SerializedError, serializeError } from './errors.js';
import type { RunStatus } from './journal.js';
import { checkReactions, type Reaction } from './reactions/definition.js';
import type { ReactionEvent } from './reactions/reactor.js';
import { type ClaimedRun, openRunQueue, type RunQueue, type RunRequest } from './run-queue.js';
import { createRuntime, type Runtime, type RuntimeOptions } from './runtime.js';
import type { Workflow } from './workflow.js';

export interface WorkerOptions {
  store: EventStore;
  /** The code of the runs it may drive; it claims runs of these workflows only. */
  workflows: Workflow[];
  /** Runs driven at once. Default 4. */
  concurrency?: number;
  /** How long a claim lasts without renewal; renewed every third of it. Default 30 s. */
  leaseMs?: number;
  /** Names the lease holder in the queue and in logs. Default host:pid:random. */
  id?: string;
  /** The safety net under the wake-ups: how often an idle worker looks for runnable runs. Default 1 s. */
  pollMs?: number;
  /** Default: openRunQueue(store), closed again by stop(). */
  queue?: RunQueue;
  /** Passed on to the runtime that drives the runs (clock, breakers, compensation retries). */
  runtime?: Omit<RuntimeOptions, 'store' | 'workflows' | 'queue' | 'reactions' | 'onReaction'>;
  /**
   * Reactions (defineReaction) this worker runs while started: each one by one
   * worker at a time (its lease), taken over by another when that worker stops
   * or dies. The runs they start go to the queue, for any worker.
   */
  reactions?: Reaction[];
  onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'started'; worker: string }
  | { type: 'claimed'; worker: string; runId: string; workflow: string; request: RunRequest; attempt: number }
  /** Released as done: the run stopped where only a new request moves it (completed, failed, cancelled, needs attention, rolled back, waiting for a signal). */
  | { type: 'finished'; worker: string; runId: string; status: RunStatus }
  /** Released but still runnable: put back for any worker after `delayMs`. */
  | { type: 'requeued'; worker: string; runId: string; status?: RunStatus; delayMs: number; reason: string }
  /** Another worker holds the run now (this one's lease lapsed): stopped driving it, wrote nothing more. */
  | { type: 'lost'; worker: string; runId: string }
  | { type: 'error'; worker: string; runId?: string; error: SerializedError }
  | { type: 'stopped'; worker: string }
  /** What one of its reactions did (acted, retrying, parked, error). */
  | { type: 'reaction'; worker: string; event: ReactionEvent };

export interface Worker {
  readonly id: string;
  /** The runs it drives now. */
  readonly running: readonly string[];
  start(): Promise<void>;
  /** Stops claiming, gives its runs `graceMs` (default 5 s) to finish, then aborts the rest and puts them back for other workers. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

export function createWorker(options: WorkerOptions): Worker {
  return new RunWorker(options);
}

interface Held {
  claim: ClaimedRun;
  lost: boolean;
  done: Promise<void>;
}

/** Where a driven run stopped on its own; anything else is still runnable. */
const RESTING: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'cancelled', 'needs_attention', 'rolled_back', 'waiting']);

/**
 * Claims runnable runs from the queue, drives each with a Runtime, renews the
 * leases meanwhile and releases each run when its driver stops. The lease keeps
 * two workers off one run; should one lapse (a stalled process) and another
 * worker take over, the old holder's next append fails the expected-version
 * check and its driver stops without writing, and its next renewal tells it to
 * abort whatever step it still runs.
 */
class RunWorker implements Worker {
  readonly id: string;
  readonly #store: EventStore;
  readonly #workflows: string[];
  readonly #workflowDefs: Workflow[];
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #onEvent: (event: WorkerEvent) => void;
  readonly #runtime: Runtime;
  readonly #reactions: Reaction[];
  readonly #leaseOptions: Pick<RuntimeOptions, 'leaseMs' | 'owner'>;
  /** Runs the reactions while started; its starts go through the queue. */
  #reactor: Runtime | undefined;
  readonly #held = new Map<string, Held>();
  #queue: RunQueue | undefined;
  readonly #ownsQueue: boolean;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopped: Promise<void> | undefined;
  #starting = false;
  #filling: Promise<void> | undefined;
  #again = false;
  #renewing = false;
  #pollTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #unwake: (() => void) | undefined;

  constructor(o: WorkerOptions) {
    const issues: string[] = [];
    if (!o?.store) issues.push('store is required');
    if (!Array.isArray(o?.workflows) || o.workflows.length === 0) issues.push('workflows must name at least one workflow');
    const concurrency = o?.concurrency ?? 4;
    const leaseMs = o?.leaseMs ?? 30_000;
    const pollMs = o?.pollMs ?? 1_000;
    if (!Number.isInteger(concurrency) || concurrency < 1) issues.push('concurrency must be a positive integer');
    if (!Number.isFinite(leaseMs) || leaseMs < 100) issues.push('leaseMs must be at least 100');
    if (!Number.isFinite(pollMs) || pollMs < 10) issues.push('pollMs must be at least 10');
    if (issues.length) throw new ValidationError('invalid worker options', issues);
    this.id = o.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.#store = o.store;
    this.#workflows = o.workflows.map((w) => w.name);
    this.#workflowDefs = o.workflows;
    this.#concurrency = concurrency;
    this.#leaseMs = leaseMs;
    this.#pollMs = pollMs;
    this.#onEvent = o.onEvent ?? (() => {});
    this.#queue = o.queue;
    this.#ownsQueue = !o.queue;
    // Its own runtime, with no queue: this is where runs are driven, not handed off.
    // The runs it drives are leased like any runtime's, for as long as its claims and under its name.
    this.#runtime = createRuntime({ leaseMs, owner: this.id, ...o.runtime, store: o.store, workflows: o.workflows });
    this.#reactions = o.reactions ?? [];
    checkReactions(this.#reactions);
    this.#leaseOptions = { leaseMs, owner: this.id };
  }

  get running(): readonly string[] {
    return [...this.#held.keys()];
  }

  async start(): Promise<void> {
    if (this.#state !== 'new' || this.#starting) return;
    this.#starting = true;
    const queue = this.#queue ?? (await openRunQueue(this.#store));
    this.#queue = queue;
    // stop() came while the queue was opening.
    if (this.#state !== 'new') {
      if (this.#ownsQueue) await queue.close();
      return;
    }
    this.#state = 'running';
    if (this.#reactions.length > 0) {
      this.#reactor = createRuntime({
        ...this.#leaseOptions,
        store: this.#store,
        workflows: [...this.#workflowDefs],
        queue,
        reactions: this.#reactions,
        onReaction: (event) => this.#emit({ type: 'reaction', worker: this.id, event }),
      });
    }
    this.#unwake = this.#queue.onWake(() => this.#fill());
    // Not unref'd: a started worker keeps its process alive, as a listening server does, until stop().
    this.#pollTimer = setInterval(() => this.#fill(), this.#pollMs);
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#leaseMs / 3))).unref();
    this.#emit({ type: 'started', worker: this.id });
    this.#fill();
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#state === 'new') this.#state = 'stopped';
    if (this.#state === 'stopped') return this.#stopped ?? Promise.resolve();
    this.#stopped ??= this.#stop(options.graceMs ?? 5_000);
    return this.#stopped;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#state = 'stopping';
    // Reactions first: nothing new is started while the runs finish.
    await this.#reactor?.close();
    clearInterval(this.#pollTimer);
    this.#unwake?.();
    // A claim in flight hands its runs back (or to #held) before we look.
    await this.#filling;
    const all = () => Promise.allSettled([...this.#held.values()].map((h) => h.done));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([all(), grace]);
    clearTimeout(timer);
    // Whatever is left is aborted mid-step; its open step re-runs under the same key wherever it is claimed next.
    if (this.#held.size > 0) await this.#runtime.close();
    await all();
    clearInterval(this.#renewTimer);
    if (this.#ownsQueue) await this.#queue?.close();
    this.#state = 'stopped';
    this.#emit({ type: 'stopped', worker: this.id });
  }

  #fill(): void {
    if (this.#state !== 'running') return;
    if (this.#filling) {
      this.#again = true;
      return;
    }
    const filling = (async () => {
      try {
        do {
          this.#again = false;
          const room = this.#concurrency - this.#held.size;
          if (room <= 0) break;
          const claimed = await (this.#queue as RunQueue).claim(this.id, room, this.#leaseMs, this.#workflows);
          if (this.#state !== 'running') {
            // Stopped while claiming: hand them straight back.
            for (const c of claimed) await (this.#queue as RunQueue).release(this.id, c, { done: false });
            break;
          }
          for (const c of claimed) this.#take(c);
          // A full batch: there may be more.
          if (claimed.length === room) this.#again = true;
        } while (this.#again);
      } catch (error) {
        this.#emit({ type: 'error', worker: this.id, error: serializeError(error) });
      }
    })();
    this.#filling = filling;
    // Cleared asynchronously, so never before the assignment above, even when the loop ends without awaiting;
    // a wake-up or a freed slot that came after the loop's last look gets another one.
    void filling.finally(() => {
      if (this.#filling === filling) this.#filling = undefined;
      if (this.#again) this.#fill();
    });
  }

  #take(claim: ClaimedRun): void {
    // Our own lease lapsed and we took the run again while still driving it: the driver we have goes on.
    if (this.#held.has(claim.runId)) return;
    const held: Held = { claim, lost: false, done: Promise.resolve() };
    this.#held.set(claim.runId, held);
    this.#emit({
      type: 'claimed',
      worker: this.id,
      runId: claim.runId,
      workflow: claim.workflow,
      request: claim.request,
      attempt: claim.attempts,
    });
    held.done = this.#drive(held);
  }

  async #drive(held: Held): Promise<void> {
    const { claim } = held;
    let status: RunStatus | undefined;
    let wakeAt: number | undefined;
    let failure: unknown;
    try {
      const info = claim.request === 'resume' ? await this.#runtime.resume(claim.runId) : await this.#runtime.drive(claim.runId);
      status = info.status;
      wakeAt = info.waiting?.timeoutAt;
    } catch (error) {
      failure = error;
    }
    try {
      if (held.lost) return;
      const queue = this.#queue as RunQueue;
      if (failure instanceof RunNotFoundError) {
        // Queued by a requester that died before appending the run's first event: nothing to drive.
        await queue.release(this.id, claim, { done: true });
        this.#emit({ type: 'error', worker: this.id, runId: claim.runId, error: serializeError(failure) });
      } else if (failure !== undefined) {
        // Code that does not match the journal, an unknown workflow, the database gone: try later, less and less often.
        const delayMs = backoff(claim.attempts);
        await queue.release(this.id, claim, { done: false, delayMs });
        this.#emit({ type: 'error', worker: this.id, runId: claim.runId, error: serializeError(failure) });
        this.#emit({ type: 'requeued', worker: this.id, runId: claim.runId, delayMs, reason: 'driver failed' });
      } else if (status === 'waiting' && wakeAt !== undefined) {
        // Parked with a deadline: back in the queue for when it runs out (a signal before then queues it at once).
        const delayMs = Math.max(0, wakeAt - Date.now());
        await queue.release(this.id, claim, { done: false, delayMs });
        this.#emit({ type: 'requeued', worker: this.id, runId: claim.runId, status, delayMs, reason: 'waiting for a signal' });
      } else if (status && RESTING.has(status)) {
        await queue.release(this.id, claim, { done: true });
        this.#emit({ type: 'finished', worker: this.id, runId: claim.runId, status });
      } else if (this.#state !== 'running') {
        await queue.release(this.id, claim, { done: false });
        this.#emit({
          type: 'requeued',
          worker: this.id,
          runId: claim.runId,
          ...(status ? { status } : {}),
          delayMs: 0,
          reason: 'worker stopping',
        });
      } else {
        // The driver stopped on a run still in progress: someone else wrote to it (the expected-version check). Look again soon.
        const delayMs = backoff(claim.attempts);
        await queue.release(this.id, claim, { done: false, delayMs });
        this.#emit({
          type: 'requeued',
          worker: this.id,
          runId: claim.runId,
          ...(status ? { status } : {}),
          delayMs,
          reason: 'run changed under its driver',
        });
      }
    } catch (error) {
      // The lease will lapse and another worker take the run over.
      this.#emit({ type: 'error', worker: this.id, runId: claim.runId, error: serializeError(error) });
    } finally {
      if (this.#held.get(claim.runId) === held) this.#held.delete(claim.runId);
      this.#fill();
    }
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#held.size === 0 || !this.#queue) return;
    this.#renewing = true;
    const snapshot = [...this.#held.values()];
    try {
      const kept = new Set(
        await this.#queue.renew(
          this.id,
          snapshot.map((h) => h.claim.runId),
          this.#leaseMs,
        ),
      );
      for (const held of snapshot) {
        const runId = held.claim.runId;
        if (kept.has(runId) || this.#held.get(runId) !== held) continue;
        held.lost = true;
        this.#emit({ type: 'lost', worker: this.id, runId });
        void this.#runtime.abandon(runId, 'lease lost to another worker');
      }
    } catch (error) {
      this.#emit({ type: 'error', worker: this.id, error: serializeError(error) });
    } finally {
      this.#renewing = false;
    }
  }

  #emit(event: WorkerEvent): void {
    try {
      this.#onEvent(event);
    } catch {
      // A logger that throws must not take the worker down.
    }
  }
}

function backoff(attempts: number): number {
  return Math.min(60_000, 250 * 2 ** Math.min(Math.max(attempts - 1, 0), 8));
}
