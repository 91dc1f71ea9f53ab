/**
 * The run queue's contract: which runs are runnable and which worker holds
 * each. It lives beside the log in the same database (a table in the same
 * PostgreSQL schema or SQLite file, a map for a memory store), so every
 * storage backend implements it once (StorageBackend.openRunQueue); the
 * runtime's workers only use it (runtime/run-queue.ts).
 *
 * A lease is an expiry time: a worker that dies simply stops renewing, and its
 * runs become claimable once their leases pass. The lease keeps workers from
 * driving a run together; the expected version of every append stays the
 * final guard.
 */

/** Why a run became runnable. Only 'resume' changes how it is driven: it continues a run rolled back with after 'stop'. */
export type RunRequest = 'start' | 'resume' | 'rollback' | 'retry' | 'resolve' | 'signal';

export interface ClaimedRun {
  runId: string;
  workflow: string;
  request: RunRequest;
  /** Requests made for the run so far; a release compares it to tell whether one arrived during the lease. */
  generation: number;
  /** Claims since the run was last done: how often a worker took it without finishing it. */
  attempts: number;
}

export interface QueueEntry extends ClaimedRun {
  state: 'queued' | 'leased' | 'done';
  leaseOwner: string | null;
  /** Epoch ms. */
  leaseUntil: number | null;
  availableAt: number;
}

export interface RunQueue {
  /**
   * Makes the run runnable for any worker and wakes idle workers. A run someone
   * holds stays theirs until released. With `delayMs` it is insurance taken
   * before a request is appended, due only later: it never replaces the request
   * of a run that already has one pending.
   */
  enqueue(runId: string, workflow: string, request: RunRequest, options?: { delayMs?: number }): Promise<void>;
  /** Leases up to `limit` runnable runs to `owner`: queued and due, or leased with the lease passed. Only the given workflows, when given. */
  claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]>;
  /** Extends the owner's leases; returns the ids it still holds. A missing id was taken over: stop driving it. */
  renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]>;
  /**
   * Lets go of a held run: done, or queued again after `delayMs`. A request that
   * arrived since the claim wins over both: the run is queued again at once.
   */
  release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void>;
  list(): Promise<QueueEntry[]>;
  /** Calls the listener when runs may have become runnable. Best effort: pollers cover what it misses. */
  onWake(listener: () => void): () => void;
  close(): Promise<void>;
}

/** The claimed run of an entry: its fields and nothing else. */
export function claimedOf(r: ClaimedRun): ClaimedRun {
  return { runId: r.runId, workflow: r.workflow, request: r.request, generation: r.generation, attempts: r.attempts };
}

/** The in-process queues' wake-up listeners. */
export class Wakers {
  readonly #listeners = new Set<() => void>();

  add(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  clear(): void {
    this.#listeners.clear();
  }

  wake(): void {
    // Not synchronously: the caller is usually inside a claim loop of its own.
    queueMicrotask(() => {
      for (const l of this.#listeners) l();
    });
  }
}
