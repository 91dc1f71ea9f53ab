/** What a group's run says of one call: its result, or why it alone failed. */
export type CallOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

interface Waiting<C, R> {
  call: C;
  /** What the call may share with no other call of its group (its streams, its chosen event ids). */
  keys: readonly string[];
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for one process's appends: calls that arrive while a group is
 * in flight wait and go together in the next, in one transaction (one round
 * trip, one commit). One group at a time: a call sharing a key with a call of
 * the group in flight could otherwise overtake it on another connection. A
 * call arriving when nothing waits is sent in the next turn of the event
 * loop, which also gathers the callers of that turn; so a lone writer waits
 * for no one. `run` answers each call of a group apart:
 * one call's refusal fails no other. Calls sharing a key (a stream, an
 * event id) never go in one group: the later one (and any later call sharing
 * a key with it) waits for the next, so such calls keep their order and each
 * sees the one before it.
 */
export class AppendQueue<C, R> {
  readonly #run: (calls: C[]) => Promise<CallOutcome<R>[]>;
  readonly #maxCalls: number;
  #waiting: Waiting<C, R>[] = [];
  #inFlight = false;
  #scheduled = false;

  /** `maxCalls`: calls in one group, at most. */
  constructor(run: (calls: C[]) => Promise<CallOutcome<R>[]>, maxCalls: number) {
    this.#run = run;
    this.#maxCalls = maxCalls;
  }

  /** Nothing in flight, nothing waiting. */
  get idle(): boolean {
    return !this.#inFlight && this.#waiting.length === 0;
  }

  submit(call: C, keys: readonly string[]): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ call, keys, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight) return;
    this.#scheduled = true;
    // setImmediate rather than a microtask: it also gathers callers that resume from their own awaits this turn.
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#inFlight || this.#waiting.length === 0) return;
    const group = this.#take();
    this.#inFlight = true;
    this.#run(group.map((w) => w.call))
      .then(
        (outcomes) =>
          group.forEach((w, i) => {
            const outcome = outcomes[i] as CallOutcome<R>;
            if (outcome.ok) w.resolve(outcome.value);
            else w.reject(outcome.error);
          }),
        (error: unknown) => {
          for (const w of group) w.reject(error);
        },
      )
      .finally(() => {
        this.#inFlight = false;
        if (this.#waiting.length > 0) this.#schedule();
      });
  }

  /** The first waiting calls in order, up to maxCalls, none sharing a key with a call taken or held back before it. */
  #take(): Waiting<C, R>[] {
    const taken: Waiting<C, R>[] = [];
    const held: Waiting<C, R>[] = [];
    const busy = new Set<string>();
    for (const w of this.#waiting) {
      if (taken.length < this.#maxCalls && w.keys.every((k) => !busy.has(k))) taken.push(w);
      else held.push(w);
      for (const k of w.keys) busy.add(k);
    }
    this.#waiting = held;
    return taken;
  }
}
