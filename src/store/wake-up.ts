import type { StorageBackend } from './types.js';

/**
 * Resolves when the backend may have new events (an append here, a NOTIFY, or
 * the poll interval for appends it cannot hear of), or when `signal` aborts.
 * Call it before reading, so an append between the read and the wait still wakes.
 */
export function wakeUp(backend: StorageBackend, signal: AbortSignal): { promise: Promise<void>; cancel: () => void } {
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    done = resolve;
  });
  const unsubscribe = backend.onAppend(() => finish());
  const timer = Number.isFinite(backend.pollIntervalMs) ? setTimeout(() => finish(), backend.pollIntervalMs) : undefined;
  const onAbort = () => finish();
  signal.addEventListener('abort', onAbort, { once: true });
  function finish() {
    unsubscribe();
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    done();
  }
  return { promise, cancel: finish };
}
