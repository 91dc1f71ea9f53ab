/**
 * Which appends carry the NOTIFY that wakes other processes' subscribers.
 *
 * A NOTIFY sent on its own is a transaction of its own: a commit, costing the
 * server and this process about what a small append does. Inside an append's
 * transaction it costs nearly nothing, but PostgreSQL holds a cluster-wide
 * lock from a notifying transaction's pre-commit to its end, WAL flush
 * included, so notifying commits take turns. Hence at most one append per
 * window carries one (`carry`). Appends committed without one are owed an
 * announcement: the first append sent once the window is over carries it, or,
 * when none comes because this process went quiet, a NOTIFY of its own does
 * (`sendAlone`). A lost one is covered by the subscribers' poll.
 */
export class Announcer {
  readonly #sendAlone: () => void;
  readonly #busy: () => boolean;
  readonly #everyMs: number;
  #lastAt = Number.NEGATIVE_INFINITY;
  #owed = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** `busy`: appends are in flight or waiting (one of them will carry what is owed, or settle and look again). */
  constructor(options: { sendAlone: () => void; busy: () => boolean; everyMs: number }) {
    this.#sendAlone = options.sendAlone;
    this.#busy = options.busy;
    this.#everyMs = options.everyMs;
  }

  /** For an append about to be sent: whether it carries a NOTIFY. */
  carry(): boolean {
    const now = performance.now();
    if (now - this.#lastAt < this.#everyMs) return false;
    this.#lastAt = now;
    this.#owed = false;
    return true;
  }

  /** After an append's transaction ended: `committed` or rolled back, having `carried` a NOTIFY or not. */
  settled(carried: boolean, committed: boolean): void {
    // Committed unannounced, or a carrier lost (it may have carried what earlier appends were owed).
    if (carried !== committed) this.#owed = true;
    if (this.#owed) this.#arm();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #arm(): void {
    if (this.#timer || this.#closed) return;
    const wait = Math.max(0, this.#lastAt + this.#everyMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#owed || this.#busy() || this.#closed) return;
      this.#lastAt = performance.now();
      this.#owed = false;
      this.#sendAlone();
    }, wait).unref();
  }
}
