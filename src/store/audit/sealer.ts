import { ValidationError } from '../../events/errors.js';
import { type KeyInput, privateKeyFrom } from '../../events/signing.js';
import type { EventStore } from '../types.js';
import type { Seal } from './report.js';

export interface SealingOptions {
  signingKey: KeyInput;
  /** Seal once this many positions have been appended since the last seal; default 1000. */
  everyEvents?: number;
  /** …or once this long has passed with anything new; default 60 s. */
  everyMs?: number;
  onSeal?: (seal: Seal) => void;
  /** A failed seal is retried at the next turn; default: ignored. */
  onError?: (error: unknown) => void;
}

export interface Sealing {
  /** Stops after the seal in progress, if any. */
  stop(): Promise<void>;
}

/**
 * Seals the log periodically (rewind worker does this when it has a signing
 * key): it looks at the head a few times a second and writes a seal when
 * enough has been appended, or when anything has and enough time has passed.
 * Several processes may seal one log: a seal made at the same time as
 * another is dropped (its expected version fails), never doubled.
 */
export function startSealing(store: EventStore, options: SealingOptions): Sealing {
  const signingKey = privateKeyFrom(options.signingKey);
  const everyEvents = options.everyEvents ?? 1000;
  const everyMs = options.everyMs ?? 60_000;
  if (!Number.isSafeInteger(everyEvents) || everyEvents < 1) throw new ValidationError('everyEvents must be a positive integer');
  if (!Number.isFinite(everyMs) || everyMs <= 0) throw new ValidationError('everyMs must be a positive number of milliseconds');

  // What the last seal (ours, or one found there) covers, and where the log stood then.
  let covered = -1;
  let seenHead = -1;
  let lastAt = 0;
  let running: Promise<void> | undefined;
  let stopped = false;

  const turn = async () => {
    const head = await store.headPosition();
    const due = covered < 0 || head - covered >= everyEvents || (head > seenHead && Date.now() - lastAt >= everyMs);
    if (!due) return;
    const seal = await store.seal({ signingKey });
    lastAt = Date.now();
    if (seal) {
      covered = seal.digest.treeHead.position;
      seenHead = seal.position;
      options.onSeal?.(seal);
    } else {
      // Nothing new, or another process sealed meanwhile: either way the log is sealed up to about here.
      covered = head;
      seenHead = head;
    }
  };
  const timer = setInterval(
    () => {
      if (running || stopped) return;
      running = turn()
        .catch((error) => options.onError?.(error))
        .finally(() => {
          running = undefined;
        });
    },
    Math.min(everyMs, 250),
  );
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
