import { type ClaimedRun, claimedOf, type QueueEntry, type RunQueue, type RunRequest, Wakers } from '../run-queue.js';

/** The run queue of a memory store: one process, one map. */
export class MemoryRunQueue implements RunQueue {
  readonly #rows = new Map<string, QueueEntry>();
  readonly #wakers = new Wakers();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async enqueue(runId: string, workflow: string, request: RunRequest, options: { delayMs?: number } = {}): Promise<void> {
    const at = this.#now() + Math.max(0, options.delayMs ?? 0);
    const row = this.#rows.get(runId);
    if (!row) {
      this.#rows.set(runId, {
        runId,
        workflow,
        request,
        generation: 1,
        attempts: 0,
        state: 'queued',
        leaseOwner: null,
        leaseUntil: null,
        availableAt: at,
      });
    } else {
      // A run's workflow never changes: the first enqueue named it.
      Object.assign(row, {
        request: row.state === 'done' || !options.delayMs ? request : row.request,
        generation: row.generation + 1,
        attempts: row.state === 'done' ? 0 : row.attempts,
        availableAt: row.state === 'queued' ? Math.min(row.availableAt, at) : at,
        state: row.state === 'leased' ? 'leased' : 'queued',
      });
    }
    if (!options.delayMs) this.#wakers.wake();
  }

  async claim(owner: string, limit: number, leaseMs: number, workflows?: readonly string[]): Promise<ClaimedRun[]> {
    const now = this.#now();
    const due = [...this.#rows.values()]
      .filter((r) => isClaimable(r, now) && (!workflows || workflows.includes(r.workflow)))
      .sort((a, b) => a.availableAt - b.availableAt)
      .slice(0, Math.max(0, limit));
    for (const r of due) Object.assign(r, { state: 'leased', leaseOwner: owner, leaseUntil: now + leaseMs, attempts: r.attempts + 1 });
    return due.map(claimedOf);
  }

  async renew(owner: string, runIds: readonly string[], leaseMs: number): Promise<string[]> {
    const held: string[] = [];
    for (const id of runIds) {
      const r = this.#rows.get(id);
      if (r?.state === 'leased' && r.leaseOwner === owner) {
        r.leaseUntil = this.#now() + leaseMs;
        held.push(id);
      }
    }
    return held;
  }

  async release(owner: string, run: ClaimedRun, outcome: { done: boolean; delayMs?: number }): Promise<void> {
    const r = this.#rows.get(run.runId);
    if (r?.state !== 'leased' || r.leaseOwner !== owner) return;
    const same = r.generation === run.generation;
    const state = outcome.done && same ? 'done' : 'queued';
    const delay = same ? Math.max(0, outcome.delayMs ?? 0) : 0;
    Object.assign(r, {
      state,
      availableAt: this.#now() + delay,
      attempts: state === 'done' ? 0 : r.attempts,
      leaseOwner: null,
      leaseUntil: null,
    });
    if (state === 'queued' && delay === 0) this.#wakers.wake();
  }

  async list(): Promise<QueueEntry[]> {
    return [...this.#rows.values()].map((r) => ({ ...r })).sort((a, b) => (a.runId < b.runId ? -1 : 1));
  }

  onWake(listener: () => void): () => void {
    return this.#wakers.add(listener);
  }

  async close(): Promise<void> {
    this.#wakers.clear();
  }
}

function isClaimable(r: QueueEntry, now: number): boolean {
  return (r.state === 'queued' && r.availableAt <= now) || (r.state === 'leased' && (r.leaseUntil ?? 0) < now);
}
